"""The device agent with updates: the ordinary Agent plus three things.

- the retained config's `update` object starts the Updater (in a worker thread) when it
  offers a version this device is not running and has not refused before;
- the outbox's reports are published on the status topic (QoS 1, not retained) and deleted
  when the broker acknowledges them, so a report written by the launcher or by an older
  version goes out with the next connection;
- after the first reading the platform confirmed (a receipt, or the broker's PUBACK for an
  agent without receipts), a health marker tells the launcher that
  this version starts, samples and publishes.

When an update is installed the agent stops (the spool keeps whatever was not yet
acknowledged) and the process exits with SWITCH_EXIT so the launcher switches to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import msgspec

from contract.releases import UpdateOffer, offer_from_config
from contract.telemetry import status_topic
from firmware.agent import Agent, AgentSpec
from firmware.update.download import Credentials
from firmware.update.install import FreeBytes, disk_free
from firmware.update.layout import Layout
from firmware.update.updater import Updater

log = logging.getLogger("firmware.update.agent")

class UpdatingAgent(Agent):
    def __init__(self, spec: AgentSpec, layout: Layout, version: str, *, public_key: str | None,
                 base_url: str | None = None, allow_http: bool = False, ca_file: Path | None = None,
                 reserve_bytes: int = 20_000_000,
                 free_bytes: FreeBytes = disk_free, report_poll_s: float = 1.0):
        super().__init__(spec)
        self.layout = layout
        self.version = version
        self.sender.firmware_version = version
        self.switch_requested = False
        self.on_switch: Callable[[], object] = lambda: None  # run.py cancels the agent's main task
        self._cancelled = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_reports = asyncio.Event()
        self._report_poll_s = report_poll_s
        self._reports_in_flight: dict[tuple[int, int], Path] = {}
        self._healthy_marked = False
        self._update_task: asyncio.Task[None] | None = None
        self.updater = Updater(layout, version, public_key=public_key, base_url=base_url, allow_http=allow_http,
                               ca_file=ca_file, credentials=self._credentials, reserve_bytes=reserve_bytes,
                               free_bytes=free_bytes, cancelled=self._cancelled, on_report=self._report_written)

    def _credentials(self) -> Credentials | None:
        secret = self.spec.mqtt.current_password()
        return Credentials(self.spec.mqtt.username or self.device_id, secret) if secret else None

    def _report_written(self) -> None:  # from the updater's thread
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake_reports.set)

    # --- the config topic ------------------------------------------------------------------

    def config_received(self, payload: bytes) -> None:
        super().config_received(payload)
        if not payload:
            return
        try:
            offer = offer_from_config(payload)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            log.warning("ignoring a malformed update offer: %s", exc)
            return
        if offer is not None:
            self.offer(offer)

    def offer(self, offer: UpdateOffer) -> None:
        reason = self.updater.skip_reason(offer)
        if reason is not None:
            log.debug("update offer %s ignored: %s", offer.version, reason)
            return
        if self._update_task is not None and not self._update_task.done():
            return  # one at a time; the retained config is read again on the next connection
        log.info("update offered: %s -> %s", self.version, offer.version)
        self._update_task = asyncio.create_task(self._update(offer), name=f"update-{offer.version}")

    async def _update(self, offer: UpdateOffer) -> None:
        ready = await asyncio.to_thread(self.updater.prepare, offer)
        if not ready:
            return
        self.layout.write_pending(offer.version, offer.rollout_id)
        with contextlib.suppress(TimeoutError):  # give the reports a moment to go out now
            async with asyncio.timeout(2.0):
                while self.layout.pending_reports() and self.link is not None and self.link.connected:
                    self._wake_reports.set()
                    await asyncio.sleep(0.05)
        log.info("release %s installed: restarting into it", offer.version)
        self.switch_requested = True
        self.on_switch()

    # --- reports and health ------------------------------------------------------------

    def link_up(self, generation: int) -> None:
        super().link_up(generation)
        self._reports_in_flight.clear()
        self._wake_reports.set()

    def link_down(self, generation: int) -> None:
        super().link_down(generation)
        self._reports_in_flight = {k: v for k, v in self._reports_in_flight.items() if k[0] != generation}

    def acked(self, generation: int, mid: int) -> None:
        report = self._reports_in_flight.pop((generation, mid), None)
        if report is not None:
            report.unlink(missing_ok=True)
            return
        super().acked(generation, mid)
        self._mark_healthy_once_confirmed()

    def receipt_received(self, payload: bytes) -> None:
        super().receipt_received(payload)
        self._mark_healthy_once_confirmed()

    def _mark_healthy_once_confirmed(self) -> None:
        if not self._healthy_marked and self.sender.counters.acked_readings > 0:
            self._healthy_marked = True
            self.layout.mark_healthy(self.version)
            log.info("version %s delivered its first reading: healthy", self.version)

    def undelivered(self, generation: int, mid: int) -> None:
        if self._reports_in_flight.pop((generation, mid), None) is None:
            super().undelivered(generation, mid)

    async def _publish_reports(self) -> None:
        topic = status_topic(self.device_id)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._report_poll_s):
                    await self._wake_reports.wait()
            self._wake_reports.clear()
            if self.link is None or not self.link.connected:
                continue
            sending = set(self._reports_in_flight.values())
            for path in self.layout.pending_reports():
                if path in sending:
                    continue
                try:
                    payload = path.read_bytes()
                except FileNotFoundError:
                    continue
                sent = self.link.publish(topic, payload)
                if sent is None:
                    break
                self._reports_in_flight[sent] = path

    async def run(self, until: datetime | None = None, drain_timeout_s: float = 30.0) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self.layout.ensure()
        except OSError as exc:  # the agent runs anyway; every offer is then refused with this reason
            log.error("cannot use %s for updates: %s", self.layout.root, exc)
        reports = asyncio.create_task(self._publish_reports(), name="update-reports")
        try:
            await super().run(until, drain_timeout_s)
        finally:
            self._cancelled.set()
            reports.cancel()
            tasks = [t for t in (reports, self._update_task) if t is not None]
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
