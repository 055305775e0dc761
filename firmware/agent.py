"""One device agent: sampler -> spool -> sender -> MQTT link, on one asyncio loop.

    drivers --(Sampler, on its schedule)--> Spool (SQLite, committed)
    Spool --(Sender, batches, rate-limited)--> MqttLink (paho thread) --QoS 1--> broker
    ingest's receipt (after its commit) --> Sender deletes those readings from the Spool
    retained config topic --> Sampler (interval, calibration, bin geometry)

`Agent.run()` runs until cancelled or, with `until` (simulated time), until the sampler
has passed it and the spool has drained (or `drain_timeout_s` ran out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from contract.telemetry import DeviceConfig, Reading, TelemetryError, decode_config
from firmware import __version__
from firmware.clock import Clock
from firmware.drivers.base import Battery, Driver
from firmware.errors import SpoolError
from firmware.faults import FaultLog
from firmware.link import Backoff, MqttLink, MqttOptions
from firmware.sampler import ReadingSource, Sampler, source_drivers
from firmware.sender import Sender, SendPolicy
from firmware.spool import READING_TYPES, Spool

log = logging.getLogger("firmware.agent")


@dataclass(frozen=True)
class AgentSpec:
    """Everything one agent needs; the CLI builds it from a config file or the simulator."""

    device_id: str
    source: ReadingSource
    clock: Clock
    mqtt: MqttOptions
    spool_path: Path
    spool_budget_bytes: int = 50_000_000
    spool_durable: bool = True
    interval_s: int | None = None
    battery: Driver[Battery] | None = None
    drivers_block: bool = True
    send: SendPolicy = field(default_factory=SendPolicy)
    backoff: Backoff = field(default_factory=Backoff)
    seed: int | None = None

    def drivers(self) -> list[Driver[Any]]:
        return [*source_drivers(self.source), *([self.battery] if self.battery else [])]


class Agent:
    def __init__(self, spec: AgentSpec):
        self.spec = spec
        self.device_id = spec.device_id
        self.kind = spec.source.kind
        self.spool = Spool(spec.spool_path, READING_TYPES[self.kind], spec.spool_budget_bytes,
                           durable=spec.spool_durable)
        self.sampler = Sampler(spec.source, spec.clock, self._store, interval_s=spec.interval_s,
                               battery=spec.battery, drivers_block=spec.drivers_block,
                               device_id=spec.device_id)
        self.sender = Sender(spec.device_id, self.kind, self.spool, __version__, policy=spec.send,
                             battery=lambda: self.sampler.battery_v, seed=spec.seed)
        self.link: MqttLink | None = None
        self._faults = FaultLog(log)

    # --- LinkListener (called on the event loop) -----------------------------------------

    def link_up(self, generation: int) -> None:
        self.sender.link_up(generation)

    def link_down(self, generation: int) -> None:
        self.sender.link_down(generation)

    def acked(self, generation: int, mid: int) -> None:
        self.sender.acked(generation, mid)

    def undelivered(self, generation: int, mid: int) -> None:
        self.sender.undelivered(generation, mid)

    def receipt_received(self, payload: bytes) -> None:
        self.sender.receipt_received(payload)

    def config_received(self, payload: bytes) -> None:
        if not payload:
            return  # retained config cleared: keep what we have
        try:
            config = decode_config(payload)
        except TelemetryError as exc:
            self._faults.report(f"{self.device_id} config", f"ignored: {exc.reason}")
            return
        self._faults.clear(f"{self.device_id} config")
        self.apply_config(config)

    def apply_config(self, config: DeviceConfig) -> None:
        self.sampler.apply_config(config)

    # --- the pipeline -------------------------------------------------------------------

    def _store(self, reading: Reading) -> None:
        try:
            self.spool.add(reading)
        except SpoolError as exc:  # e.g. a read-only or failing SD card: keep sampling, keep trying
            self._faults.report(f"{self.device_id} spool", f"reading lost, cannot store it: {exc}")
            return
        self._faults.clear(f"{self.device_id} spool")
        self.sender.reading_added()

    async def run(self, until: datetime | None = None, drain_timeout_s: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        self.link = MqttLink(self.device_id, self.spec.mqtt, self, loop, backoff=self.spec.backoff,
                             seed=self.spec.seed)
        self.sender.attach(self.link.publish)
        sender = asyncio.create_task(self.sender.run(), name=f"sender-{self.device_id}")
        self.link.start()
        try:
            await self.sampler.run(until)
            if until is not None:
                await self.drain(drain_timeout_s)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            await self.link.stop()
            self.spool.close()
            for driver in self.spec.drivers():
                driver.close()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything spooled was acknowledged; False on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.sender.wait_drained()
            return True
        except TimeoutError:
            pass
        pending = self.spool.pending()
        log.warning("%s: stopping with %d readings still spooled (they go out on the next run)",
                    self.device_id, pending)
        return False
