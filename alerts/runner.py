"""The alerts runner: evaluate the rules, write transitions with their notifications, send.

One cycle has two steps, each safe to interrupt:

1. evaluate: load facts, run the rules (pure), step every cause's alert (pure), and write
   the alerts, their history and their outbox rows in one transaction, under an advisory
   lock so that two runners never evaluate at once;
2. deliver: claim due outbox rows, send them concurrently (each bounded by a timeout), and
   mark each sent, retried later, or dead-lettered.

A runner that dies after step 1 leaves pending rows that the next runner sends; one that
dies between a send and its mark leaves a claimed row that is sent again after the lease
(at least once, with the notification id as idempotency key). Time comes from a `Clock`,
so tests and replays run at any `now`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from alerts.errors import DeliveryError, TemporaryFailure
from alerts.facts import load_facts
from alerts.lifecycle import LifecyclePolicy, step
from alerts.model import Alert, Signal
from alerts.rules import evaluate
from alerts.senders import Senders
from alerts.store import (
    OutboxItem,
    claim,
    current_alerts,
    mark_failed,
    mark_feed_sent,
    mark_sent,
    subscriptions,
    write_step,
)
from cityops.periodic import Periodic, Task
from cityops.settings import AlertsSettings
from cityops.storage import Database

log = logging.getLogger("alerts.runner")

LOCK_KEY = int.from_bytes(hashlib.sha256(b"cityops.alerts.evaluate").digest()[:8], "big", signed=True)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class CycleReport:
    at: datetime
    signals: int = 0
    transitions: dict[str, int] = field(default_factory=dict)
    queued: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    preference_problems: list[tuple[int, str]] = field(default_factory=list)
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def summary(self) -> str:
        moves = ", ".join(f"{n} {k}" for k, n in sorted(self.transitions.items())) or "no changes"
        text = (f"alerts at {self.at:%Y-%m-%d %H:%M:%S} UTC: {self.signals} signals, {moves}; {self.queued} "
                f"notifications queued, {self.sent} sent, {self.retried} to retry, {self.dead} dead-lettered")
        if self.preference_problems:
            text += f"; {len(self.preference_problems)} subscriptions skipped (see `cityops alerts subscriptions`)"
        return text + f" ({self.seconds:.2f} s)"


def policy_of(settings: AlertsSettings) -> LifecyclePolicy:
    return LifecyclePolicy(settings.clear_hold, settings.escalate_after, settings.max_escalation_level)


class AlertsRunner:
    def __init__(self, db: Database, settings: AlertsSettings, *, mqtt_url: str | None = None,
                 clock: Clock | None = None) -> None:
        self.db = db
        self.settings = settings
        self.mqtt_url = mqtt_url
        self.clock = clock or SystemClock()

    async def evaluate(self, report: CycleReport | None = None) -> CycleReport:
        """Step 1: rules -> transitions -> outbox rows, in one transaction."""
        now = self.clock.now()
        report = report or CycleReport(now)
        facts = await load_facts(self.db, now, self.settings)
        policy = policy_of(self.settings)
        async with self.db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            subs, report.preference_problems = await subscriptions(conn)
            for sub_id, problem in report.preference_problems:
                log.warning("subscription %d skipped: %s", sub_id, problem)
            alerts = await current_alerts(conn)
            # the groups' members so far: a member that holds stays in its group
            evaluation = evaluate(facts, self.settings, {c: a.member_ids for c, a in alerts.items() if a.members})
            report.signals, report.notes = len(evaluation.signals), evaluation.notes
            for note in evaluation.notes:
                log.info("%s", note)
            by_cause = {s.cause: s for s in evaluation.signals}
            for cause in sorted(set(by_cause) | set(alerts)):
                alert = alerts.get(cause)
                signal = by_cause.get(cause)
                if signal is None and alert is not None and alert.rule not in evaluation.evaluated:
                    signal = hold(alert)  # its facts are missing this time: only escalation moves
                result = step(alert, signal, now, policy)
                for t in result.transitions:
                    report.transitions[t.kind] = report.transitions.get(t.kind, 0) + 1
                report.queued += await write_step(conn, result, subs, now, self.settings)
        return report

    async def deliver(self, report: CycleReport | None = None) -> CycleReport:
        """Step 2: send every due notification; batches until none are due."""
        report = report or CycleReport(self.clock.now())
        async with Senders(self.settings, self.mqtt_url) as senders:
            gate = asyncio.Semaphore(self.settings.send_concurrency)
            while True:
                now = self.clock.now()
                items = await claim(self.db, now, self.settings)
                if not items:
                    break
                feed = [i for i in items if i.channel == "feed"]
                if feed:  # the in-app feed is this database: one statement for all of them
                    await mark_feed_sent(self.db, feed, now)
                    report.sent += len(feed)
                outcomes = await asyncio.gather(*(self._send_one(senders, gate, item) for item in items
                                                  if item.channel != "feed"))
                for outcome in outcomes:
                    if outcome == "sent":
                        report.sent += 1
                    elif outcome == "dead":
                        report.dead += 1
                    else:
                        report.retried += 1
                if len(items) < self.settings.claim_batch:
                    break
        return report

    async def _send_one(self, senders: Senders, gate: asyncio.Semaphore, item: OutboxItem) -> str:
        async with gate:
            try:
                async with asyncio.timeout(self.settings.send_timeout_s):
                    await senders.send(item)
            except TimeoutError:
                error: DeliveryError = TemporaryFailure(f"no answer within {self.settings.send_timeout_s:g} s",
                                                        channel=item.channel, target=item.target)
            except DeliveryError as exc:
                error = exc
            else:
                await mark_sent(self.db, item, self.clock.now())
                return "sent"
        temporary = isinstance(error, TemporaryFailure)
        log.warning("notification %d (%s to %s) failed: %s", item.outbox_id, item.channel, item.target, error)
        dead = await mark_failed(self.db, item, str(error), temporary=temporary, now=self.clock.now(),
                                 settings=self.settings)
        return "dead" if dead else "retry"

    async def cycle(self) -> CycleReport:
        began = time.perf_counter()
        report = await self.evaluate()
        await self.deliver(report)
        report.seconds = time.perf_counter() - began
        log.info("%s", report.summary())
        return report

    async def run_forever(self, every_s: float, stop: asyncio.Event | None = None) -> None:
        """A cycle every `every_s` seconds until `stop` is set; a failed cycle is logged and
        retried with a backoff (cityops/periodic.py)."""
        await Periodic([Task("alerts", self.cycle)], every_s, max_backoff_s=max(every_s, 60.0)).run(
            stop or asyncio.Event())


def hold(alert: Alert) -> Signal:
    """A signal that keeps the alert as it is."""
    return Signal(alert.rule, alert.cause, "hold", alert.severity, alert.title, alert.detail, alert.value,
                  alert.device_id, alert.household_id, alert.area, alert.route_id, alert.members,
                  alert.landlord_id)
