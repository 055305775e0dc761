"""Send the spool in batches, and delete what the platform has confirmed.

Readings leave in spool order, many to a message (up to `batch_max`), with at most
`window` messages awaiting the broker's PUBACK and at most `messages_per_s` messages a
second: live traffic (one reading every few minutes) is untouched by the limit, while a
backlog of days goes out in a steady stream instead of a flood. After a reconnect with a
backlog the first message waits a random `replay_jitter_s`, so a thousand devices coming
back at once spread out.

When the readings leave the spool (contract/receipts.py, docs/ingest.md "Receipts"):
- with receipts (the default; telemetry version 2), on ingest's receipt for the message,
  sent once the platform has committed it (stored) or kept it as a dead letter (refused).
  A PUBACK only means a broker took it: a broker that crashes loses what it held. At most
  `receipt_window` messages wait for their receipts; what has none after
  `receipt_timeout_s` goes again (the timeout doubles while none come, up to
  `receipt_timeout_max_s`, so a platform that is behind is not flooded by resends);
- without (`receipts = false`, telemetry version 1, for a platform older than receipts),
  on the broker's PUBACK, as before.
A lost connection forgets what was in flight: it is sent again from the spool on the next
connection. Duplicates are fine: the platform drops them, and a late receipt still counts.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from contract.receipts import ReceiptError, decode_receipt
from contract.telemetry import BATCH_TYPES, SCHEMA_VERSION, Kind, encode_batch, telemetry_topic
from firmware.spool import Spool

log = logging.getLogger("firmware.sender")

PublishFn = Callable[[str, bytes], "tuple[int, int] | None"]
LEGACY_VERSION = 1  # telemetry without receipts
MAX_LATE = 4_096  # messages given up on whose receipt may still come


@dataclass(frozen=True)
class SendPolicy:
    batch_max: int = 200
    window: int = 4  # messages awaiting the broker's PUBACK
    messages_per_s: float = 2.0
    replay_jitter_s: float = 10.0
    undelivered_retry_s: float = 5.0  # pause after the broker found no subscriber
    receipts: bool = True
    receipt_window: int = 16  # messages sent and not yet receipted
    receipt_timeout_s: float = 60.0
    receipt_timeout_max_s: float = 900.0


@dataclass
class SendCounters:
    messages: int = 0
    readings: int = 0
    acked_readings: int = 0  # confirmed: receipted as stored (or PUBACKed, without receipts)
    undelivered: int = 0  # messages the broker could not deliver to anyone (sent again)
    refused_readings: int = 0  # receipted as refused: kept by the platform as dead letters
    receipt_timeouts: int = 0  # times the unreceipted messages went again


@dataclass
class _Sent:
    ids: list[int]
    at: float  # monotonic time it was sent


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
        self._version = SCHEMA_VERSION if self.policy.receipts else LEGACY_VERSION
        self._publish: PublishFn | None = None
        self._generation: int | None = None  # the live connection, None while down
        self._in_flight: dict[tuple[int, int], int] = {}  # (generation, mid) -> seq, awaiting the PUBACK
        self._unconfirmed: OrderedDict[int, _Sent] = OrderedDict()  # seq -> sent, awaiting confirmation
        self._late: OrderedDict[int, list[int]] = OrderedDict()  # seq -> ids, given up on but still honoured
        self._timeout_s = self.policy.receipt_timeout_s
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
        self._rewind(0)  # resend everything not yet confirmed
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
        seq = self._in_flight.pop((generation, mid), None)
        if seq is None:
            return  # the ack of an older connection, or of a status message
        if not self.policy.receipts:
            self._confirm(seq)
        self._wake.set()

    def undelivered(self, generation: int, mid: int) -> None:
        """The broker took the message but had no subscriber for it: keep its readings
        spooled and send them again after a pause (the platform is resubscribing)."""
        seq = self._in_flight.pop((generation, mid), None)
        sent = self._unconfirmed.get(seq) if seq is not None else None
        if sent is None:
            return
        self.counters.undelivered += 1
        self._rewind(sent.ids[0] - 1)
        self._next_send_at = time.monotonic() + self.policy.undelivered_retry_s
        self._wake.set()

    def receipt_received(self, payload: bytes) -> None:
        """Ingest's word on our messages: delete what it stored or refused."""
        try:
            receipt = decode_receipt(payload)
        except ReceiptError as exc:
            log.warning("%s: ignored a receipt: %s", self.device_id, exc)
            return
        refused = {refusal.seq: refusal.reason for refusal in receipt.refused}
        progress = False
        for seq in [*self._unconfirmed, *self._late]:
            if seq in refused:
                deleted = self._confirm(seq, counted=False)
                self.counters.refused_readings += deleted
                log.warning("%s: the platform refused message %d (%d readings): %s",
                            self.device_id, seq, deleted, refused[seq])
                progress = True
            elif receipt.is_stored(seq):
                self._confirm(seq)
                progress = True
        if progress:
            self._timeout_s = self.policy.receipt_timeout_s
            self._wake.set()

    def _confirm(self, seq: int, *, counted: bool = True) -> int:
        """The platform has the message: its readings leave the spool; returns how many did
        (a reading sent twice, in two messages, leaves with the first receipt)."""
        sent = self._unconfirmed.pop(seq, None)
        ids = sent.ids if sent is not None else self._late.pop(seq, [])
        deleted = self.spool.acknowledge(ids)
        if counted:
            self.counters.acked_readings += deleted
        if self.idle():
            self._drained.set()
        return deleted

    def _rewind(self, to_id: int) -> None:
        """Send again from spool id `to_id` on; messages from there on are given up on (late)."""
        self._last_sent_id = min(self._last_sent_id, to_id)
        for seq, sent in list(self._unconfirmed.items()):
            if sent.ids[-1] > to_id:
                del self._unconfirmed[seq]
                self._late[seq] = sent.ids
        while len(self._late) > MAX_LATE:
            self._late.popitem(last=False)

    def _receipt_overdue(self) -> float | None:
        """Seconds until the oldest unconfirmed message's receipt is overdue (<= 0: it is)."""
        if not self.policy.receipts or not self._unconfirmed:
            return None
        oldest = next(iter(self._unconfirmed.values()))
        return oldest.at + self._timeout_s - time.monotonic()

    def _resend_unreceipted(self) -> None:
        count = len(self._unconfirmed)
        first = next(iter(self._unconfirmed.values())).ids[0]
        log.warning("%s: no receipt for %d messages in %.0f s: sending them again", self.device_id, count,
                    self._timeout_s)
        self.counters.receipt_timeouts += 1
        self._rewind(first - 1)
        self._timeout_s = min(self._timeout_s * 2, self.policy.receipt_timeout_max_s)
        self._replay_delay = self._rng.uniform(0, self.policy.replay_jitter_s)

    # --- the sending loop ---------------------------------------------------------------

    def idle(self) -> bool:
        """Nothing spooled and nothing waiting for confirmation."""
        return not self._in_flight and not self._unconfirmed and self.spool.pending() == 0

    async def wait_drained(self) -> None:
        await self._drained.wait()

    async def run(self) -> None:
        while True:
            overdue = self._receipt_overdue()
            if overdue is not None and overdue <= 0:
                self._resend_unreceipted()
            else:
                try:
                    async with asyncio.timeout(overdue):
                        await self._wake.wait()
                except TimeoutError:
                    continue
            self._wake.clear()
            if self._replay_delay:
                delay, self._replay_delay = self._replay_delay, 0.0
                await asyncio.sleep(delay)
            while self._may_send():
                if not await self._send_next():
                    break

    def _may_send(self) -> bool:
        return (self._generation is not None and len(self._in_flight) < self.policy.window
                and (not self.policy.receipts or len(self._unconfirmed) < self.policy.receipt_window))

    async def _send_next(self) -> bool:
        wait = self._next_send_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        # Read after the wait: a reconnect during it restarts from the oldest unconfirmed.
        generation = self._generation
        rows = self.spool.oldest(self.policy.batch_max, after_id=self._last_sent_id)
        if generation is None or not rows or self._publish is None:
            return False
        seq = self.spool.next_seq()
        batch = BATCH_TYPES[self.kind](v=self._version, device_id=self.device_id, seq=seq,
                                       fw=self.firmware_version, battery_v=self._battery(),
                                       readings=[row.reading for row in rows])  # type: ignore[misc]
        sent = self._publish(self._topic, encode_batch(batch))
        if sent is None or sent[0] != generation:
            return False
        self._in_flight[sent] = seq
        self._unconfirmed[seq] = _Sent([row.id for row in rows], time.monotonic())
        self._last_sent_id = rows[-1].id
        self._next_send_at = time.monotonic() + 1.0 / self.policy.messages_per_s
        self.counters.messages += 1
        self.counters.readings += len(rows)
        return True
