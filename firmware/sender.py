"""Send the spool to the broker in batches, and delete what the broker acknowledged.

Readings leave in spool order, many to a message (up to `batch_max`), with at most
`window` messages awaiting their PUBACK and at most `messages_per_s` messages a second:
live traffic (one reading every few minutes) is untouched by the limit, while a backlog
of days goes out in a steady stream instead of a flood. After a reconnect with a backlog
the first message waits a random `replay_jitter_s`, so a thousand devices coming back
at once spread out. A lost connection forgets what was in flight: it is sent again from
the spool on the next connection (duplicates are fine; the platform drops them).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from contract.telemetry import BATCH_TYPES, SCHEMA_VERSION, Kind, encode_batch, telemetry_topic
from firmware.spool import Spool

log = logging.getLogger("firmware.sender")

PublishFn = Callable[[str, bytes], "tuple[int, int] | None"]


@dataclass(frozen=True)
class SendPolicy:
    batch_max: int = 200
    window: int = 4
    messages_per_s: float = 2.0
    replay_jitter_s: float = 10.0
    undelivered_retry_s: float = 5.0  # pause after the broker found no subscriber


@dataclass
class SendCounters:
    messages: int = 0
    readings: int = 0
    acked_readings: int = 0
    undelivered: int = 0  # messages the broker could not deliver to anyone (sent again)


class Sender:
    def __init__(self, device_id: str, kind: Kind, spool: Spool, firmware_version: str, *,
                 policy: SendPolicy | None = None, battery: Callable[[], float | None] = lambda: None,
                 seed: int | None = None):
        self.device_id = device_id
        self.kind = kind
        self.spool = spool
        self.firmware_version = firmware_version
        self.policy = policy or SendPolicy()
        self.counters = SendCounters()
        self._battery = battery
        self._rng = random.Random(seed)
        self._topic = telemetry_topic(device_id)
        self._publish: PublishFn | None = None
        self._generation: int | None = None  # the live connection, None while down
        self._in_flight: dict[tuple[int, int], list[int]] = {}
        self._last_sent_id = 0
        self._wake = asyncio.Event()
        self._replay_delay = 0.0
        self._next_send_at = 0.0
        self._drained = asyncio.Event()
        if spool.pending() == 0:
            self._drained.set()

    def attach(self, publish: PublishFn) -> None:
        self._publish = publish

    # --- events (on the event loop) ---------------------------------------------------

    def reading_added(self) -> None:
        self._drained.clear()
        self._wake.set()

    def link_up(self, generation: int) -> None:
        self._generation = generation
        self._in_flight.clear()
        self._last_sent_id = 0  # resend everything not yet acknowledged
        backlog = self.spool.pending()
        self._replay_delay = self._rng.uniform(0, self.policy.replay_jitter_s) \
            if backlog > self.policy.batch_max else 0.0
        if backlog:
            log.info("%s: connected with %d readings spooled", self.device_id, backlog)
        self._wake.set()

    def link_down(self, generation: int) -> None:
        if generation == self._generation:
            self._generation = None
            self._in_flight.clear()

    def acked(self, generation: int, mid: int) -> None:
        ids = self._in_flight.pop((generation, mid), None)
        if ids is None:
            return  # the ack of an older connection, or of a status message
        self.spool.acknowledge(ids)
        self.counters.acked_readings += len(ids)
        if self.idle():
            self._drained.set()
        self._wake.set()

    def undelivered(self, generation: int, mid: int) -> None:
        """The broker took the message but had no subscriber for it: keep its readings
        spooled and send them again after a pause (the platform is resubscribing)."""
        ids = self._in_flight.pop((generation, mid), None)
        if ids is None:
            return
        self.counters.undelivered += 1
        self._last_sent_id = min(self._last_sent_id, ids[0] - 1)
        self._next_send_at = time.monotonic() + self.policy.undelivered_retry_s
        self._wake.set()

    # --- the sending loop ---------------------------------------------------------------

    def idle(self) -> bool:
        """Nothing spooled and nothing in flight."""
        return not self._in_flight and self.spool.pending() == 0

    async def wait_drained(self) -> None:
        await self._drained.wait()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._replay_delay:
                delay, self._replay_delay = self._replay_delay, 0.0
                await asyncio.sleep(delay)
            while self._generation is not None and len(self._in_flight) < self.policy.window:
                if not await self._send_next():
                    break

    async def _send_next(self) -> bool:
        wait = self._next_send_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        # Read after the wait: a reconnect during it restarts from the oldest unacknowledged.
        generation = self._generation
        rows = self.spool.oldest(self.policy.batch_max, after_id=self._last_sent_id)
        if generation is None or not rows or self._publish is None:
            return False
        batch = BATCH_TYPES[self.kind](v=SCHEMA_VERSION, device_id=self.device_id, seq=self.spool.next_seq(),
                                       fw=self.firmware_version, battery_v=self._battery(),
                                       readings=[row.reading for row in rows])  # type: ignore[misc]
        sent = self._publish(self._topic, encode_batch(batch))
        if sent is None or sent[0] != generation:
            return False
        self._in_flight[sent] = [row.id for row in rows]
        self._last_sent_id = rows[-1].id
        self._next_send_at = time.monotonic() + 1.0 / self.policy.messages_per_s
        self.counters.messages += 1
        self.counters.readings += len(rows)
        return True
