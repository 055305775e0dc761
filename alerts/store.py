"""Alerts, subscriptions and the outbox in the database (the adapter for the pure modules).

The outbox pattern: a transition, its alert_events row and one alert_outbox row per
recipient are written in ONE transaction, so either all of them exist or none do. The
sender then claims due rows (`FOR UPDATE SKIP LOCKED`, so concurrent senders never take
the same row, plus a lease: a sender that dies mid-send leaves the row due again once the
lease ends), sends, and marks each sent or failed. A crash between sending and marking
means the row is sent again: delivery to external systems is at least once, and the
notification id (alert_outbox.outbox_id) goes along as the idempotency key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from alerts.errors import AlertNotFound, InvalidPreference, SecretsKeyError
from alerts.lifecycle import Step, acknowledge
from alerts.messages import backoff_s, payload
from alerts.model import Alert, Member
from alerts.preferences import Subscription, due_at, parse_subscription, wants
from alerts.sealing import Sealer
from cityops.settings import AlertsSettings
from cityops.storage import Database
from cityops.storage.database import Connection

log = logging.getLogger("alerts.store")

_ALERT_FIELDS = ("alert_id", "rule", "cause", "severity", "state", "title", "detail", "opened_at", "last_firing_at",
                 "device_id", "household_id", "area", "route_id", "value", "acknowledged_at", "acknowledged_by",
                 "resolved_at", "escalation_level", "escalated_at", "clear_since", "members", "landlord_id")
_MUTABLE = ("severity", "state", "title", "detail", "value", "acknowledged_at", "acknowledged_by", "resolved_at",
            "escalation_level", "escalated_at", "clear_since", "last_firing_at", "members")


def alert_from_row(row: asyncpg.Record) -> Alert:
    fields = {f: row[f] for f in _ALERT_FIELDS}
    fields["members"] = tuple(Member.from_json(m) for m in json.loads(row["members"] or "[]"))
    return Alert(**fields)


def _column(alert: Alert, field: str) -> Any:
    """An alert's field as its column takes it (members: jsonb text)."""
    if field == "members":
        return json.dumps([m.as_json() for m in alert.members])
    return getattr(alert, field)


async def current_alerts(conn: Connection) -> dict[str, Alert]:
    """The alerts not yet resolved, one per cause, locked until the transaction ends."""
    rows = await conn.fetch("SELECT * FROM alerts WHERE state <> 'resolved' FOR UPDATE")
    return {r["cause"]: alert_from_row(r) for r in rows}


async def subscriptions(conn: Connection) -> tuple[list[Subscription], list[tuple[int, str]]]:
    """The enabled subscriptions that work, and (id, problem) for those that do not.

    A problem is written to the row (alert_subscriptions.problem) so `cityops alerts
    subscriptions` shows it; fixing the row clears it on the next cycle."""
    good: list[Subscription] = []
    problems: list[tuple[int, str]] = []
    for row in await conn.fetch("SELECT * FROM alert_subscriptions WHERE enabled ORDER BY subscription_id"):
        problem: str | None = None
        try:
            good.append(parse_subscription(dict(row)))
        except InvalidPreference as exc:
            problem = f"{exc.field}: {exc}"
            problems.append((row["subscription_id"], problem))
        if problem != row["problem"]:
            await conn.execute("UPDATE alert_subscriptions SET problem = $2 WHERE subscription_id = $1",
                               row["subscription_id"], problem)
    return good, problems


async def _event(conn: Connection, alert_id: int, at: datetime, kind: str, *, severity: str | None = None,
                 level: int | None = None, outbox_id: int | None = None, actor: str | None = None,
                 detail: str = "") -> int:
    event_id: int = await conn.fetchval(
        "INSERT INTO alert_events (alert_id, at, kind, severity, escalation_level, outbox_id, actor, detail) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING event_id",
        alert_id, at, kind, severity, level, outbox_id, actor, detail)
    return event_id


async def write_step(conn: Connection, step: Step, subs: list[Subscription], now: datetime,
                     settings: AlertsSettings) -> int:
    """Write one cause's step: the alert, its transitions, and their notifications. Returns how many
    notifications were queued."""
    alert = step.alert
    if alert is None or not step.changed:
        return 0
    if alert.alert_id is None:
        alert_id = await conn.fetchval(
            f"INSERT INTO alerts ({', '.join(_ALERT_FIELDS[1:])}) "
            f"VALUES ({', '.join(f'${i}' for i in range(1, len(_ALERT_FIELDS)))}) RETURNING alert_id",
            *(_column(alert, f) for f in _ALERT_FIELDS[1:]))
        alert = replace(alert, alert_id=alert_id)
    else:
        await conn.execute(
            f"UPDATE alerts SET {', '.join(f'{c} = ${i}' for i, c in enumerate(_MUTABLE, start=2))}, "
            "updated_at = now() WHERE alert_id = $1", alert.alert_id, *(_column(alert, c) for c in _MUTABLE))
    assert alert.alert_id is not None
    queued = 0
    for t in step.transitions:
        event_id = await _event(conn, alert.alert_id, t.at, t.kind, severity=alert.severity,
                                level=alert.escalation_level, actor=t.actor, detail=t.detail)
        body = json.dumps(payload(alert, t))
        for sub in subs:
            if not wants(sub, alert, t.kind):
                continue
            due = due_at(sub, alert.severity, now, settings.quiet_hours_bypass)
            target = alert.device_id if sub.target == "@device" else sub.target
            outbox_id = await conn.fetchval(
                "INSERT INTO alert_outbox (alert_id, event_id, subscription_id, user_id, channel, target, payload, "
                "due_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) ON CONFLICT DO NOTHING RETURNING outbox_id",
                alert.alert_id, event_id, sub.subscription_id, sub.user_id, sub.channel, target or "", body, due)
            if outbox_id is None:
                continue
            queued += 1
            if due > now:
                await _event(conn, alert.alert_id, now, "held", outbox_id=outbox_id, actor=sub.channel,
                             detail=f"quiet hours for {sub.user_id}: sent at {due:%Y-%m-%d %H:%M} UTC")
    return queued


@dataclass(frozen=True)
class OutboxItem:
    outbox_id: int
    alert_id: int
    user_id: str
    channel: str
    target: str
    payload: dict[str, Any]
    attempts: int                  # including this one
    secret: str | None


_CLAIM = """
WITH due AS (
    SELECT outbox_id FROM alert_outbox
    WHERE status = 'pending' AND due_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
    ORDER BY due_at, outbox_id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE alert_outbox o SET claimed_until = $3, attempts = o.attempts + 1
FROM due WHERE o.outbox_id = due.outbox_id
RETURNING o.outbox_id, o.alert_id, o.user_id, o.channel, o.target, o.payload, o.attempts,
          (SELECT s.secret FROM alert_subscriptions s WHERE s.subscription_id = o.subscription_id) AS secret
"""


async def claim(db: Database, now: datetime, settings: AlertsSettings) -> list[OutboxItem]:
    """Take up to `claim_batch` due notifications for `lease_s`; others' claims are skipped."""
    async with db.transaction() as conn:
        rows = await conn.fetch(_CLAIM, now, settings.claim_batch, now + timedelta(seconds=settings.lease_s))
    items = [OutboxItem(r["outbox_id"], r["alert_id"], r["user_id"], r["channel"], r["target"],
                        json.loads(r["payload"]), r["attempts"], r["secret"]) for r in rows]
    return sorted(items, key=lambda i: i.outbox_id)


async def mark_sent(db: Database, item: OutboxItem, now: datetime) -> None:
    async with db.transaction() as conn:
        status = await conn.execute(
            "UPDATE alert_outbox SET status = 'sent', sent_at = $2, claimed_until = NULL, last_error = NULL "
            "WHERE outbox_id = $1 AND status = 'pending'", item.outbox_id, now)
        if status.endswith(" 0"):
            return  # someone else finished it (our lease ran out): nothing more to record
        await _event(conn, item.alert_id, now, "sent", outbox_id=item.outbox_id, actor=item.channel,
                     detail=f"to {item.user_id} ({item.target or item.channel}), attempt {item.attempts}")


_FEED_SENT = """
WITH sent AS (
    UPDATE alert_outbox SET status = 'sent', sent_at = $2, claimed_until = NULL, last_error = NULL
    WHERE outbox_id = ANY($1::bigint[]) AND status = 'pending'
    RETURNING outbox_id, alert_id, user_id, payload, attempts
), feed AS (
    INSERT INTO notifications (user_id, alert_id, outbox_id, severity, title, body, created_at)
    SELECT user_id, alert_id, outbox_id, payload->>'severity',
           CASE WHEN payload->>'transition' = 'resolved' THEN 'Resolved: ' ELSE '' END || (payload->>'title'),
           coalesce(payload->>'detail', ''), $2
    FROM sent
    ON CONFLICT (outbox_id) DO NOTHING
)
INSERT INTO alert_events (alert_id, at, kind, outbox_id, actor, detail)
SELECT alert_id, $2, 'sent', outbox_id, 'feed', 'to ' || user_id || ' (feed), attempt ' || attempts FROM sent
"""


async def mark_feed_sent(db: Database, items: list[OutboxItem], now: datetime) -> None:
    """Deliver in-app feed notifications: the feed row and the mark in one statement, exactly once."""
    async with db.transaction() as conn:
        await conn.execute(_FEED_SENT, [i.outbox_id for i in items], now)


async def mark_failed(db: Database, item: OutboxItem, error: str, *, temporary: bool, now: datetime,
                      settings: AlertsSettings) -> bool:
    """Record a failed attempt; retry later (with backoff) or dead-letter. True when dead-lettered."""
    dead = not temporary or item.attempts >= settings.max_attempts
    async with db.transaction() as conn:
        if dead:
            await conn.execute("UPDATE alert_outbox SET status = 'dead', claimed_until = NULL, last_error = $2 "
                               "WHERE outbox_id = $1 AND status = 'pending'", item.outbox_id, error)
            why = "permanent failure" if not temporary else f"{item.attempts} attempts failed"
            await _event(conn, item.alert_id, now, "dead_lettered", outbox_id=item.outbox_id, actor=item.channel,
                         detail=f"{why}: {error}")
        else:
            retry_at = now + timedelta(seconds=backoff_s(item.attempts, settings.backoff_base_s,
                                                         settings.backoff_max_s))
            await conn.execute("UPDATE alert_outbox SET due_at = $2, claimed_until = NULL, last_error = $3 "
                               "WHERE outbox_id = $1 AND status = 'pending'", item.outbox_id, retry_at, error)
            await _event(conn, item.alert_id, now, "failed", outbox_id=item.outbox_id, actor=item.channel,
                         detail=f"attempt {item.attempts}: {error}; retry at {retry_at:%H:%M:%S} UTC")
    return dead


async def acknowledge_alert(db: Database, alert_id: int, by: str, now: datetime) -> Step:
    async with db.transaction() as conn:
        row = await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = $1 FOR UPDATE", alert_id)
        if row is None:
            raise AlertNotFound(f"no alert {alert_id}")
        step = acknowledge(alert_from_row(row), by, now)
        if step.changed and step.alert is not None:
            await conn.execute("UPDATE alerts SET state = $2, acknowledged_at = $3, acknowledged_by = $4, "
                               "updated_at = now() WHERE alert_id = $1", alert_id, step.alert.state,
                               step.alert.acknowledged_at, step.alert.acknowledged_by)
            for t in step.transitions:
                await _event(conn, alert_id, t.at, t.kind, severity=step.alert.severity,
                             level=step.alert.escalation_level, actor=t.actor)
    return step


async def add_subscription(db: Database, fields: dict[str, Any], sealer: Sealer | None) -> int:
    """Check the fields as the runner will, then store them, a webhook's secret sealed (alerts/sealing.py);
    InvalidPreference when they cannot work, SecretsKeyError when there is no key to seal with."""
    parse_subscription({"subscription_id": 0, **fields})
    if fields.get("secret"):
        if sealer is None:
            raise SecretsKeyError("webhook secrets are stored sealed, and there is no key to seal with")
        fields = {**fields, "secret": sealer.seal(fields["secret"])}
    columns = list(fields)
    subscription_id: int = await db.fetchval(
        f"INSERT INTO alert_subscriptions ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) RETURNING subscription_id",
        *fields.values())
    return subscription_id


async def check_secrets(db: Database, sealer: Sealer | None) -> int:
    """Every enabled webhook's secret opens with the keys; SecretsKeyError naming those that do not
    (a missing or wrong key, or a secret still in clear). Returns how many were checked."""
    rows = await db.fetch("SELECT subscription_id, secret FROM alert_subscriptions WHERE channel = 'webhook' "
                          "AND enabled AND secret IS NOT NULL ORDER BY subscription_id")
    bad = []
    for row in rows:
        try:
            if sealer is None:
                raise SecretsKeyError("no key")
            sealer.open(row["secret"])
        except SecretsKeyError as exc:
            bad.append(f"{row['subscription_id']} ({exc})")
    if bad:
        raise SecretsKeyError(f"{len(bad)} webhook secret(s) cannot be opened: {'; '.join(bad[:10])}")
    return len(rows)


async def reseal_secrets(db: Database, sealer: Sealer) -> tuple[int, list[int]]:
    """Seal every webhook secret with the first key (secrets in clear, or under an older key), in one
    transaction. A disabled subscription whose secret no key opens is left as it is and listed; an
    enabled one stops everything (SecretsKeyError): its key must be found first."""
    sealed, left = 0, []
    async with db.transaction() as conn:
        rows = await conn.fetch("SELECT subscription_id, secret, enabled FROM alert_subscriptions "
                                "WHERE secret IS NOT NULL ORDER BY subscription_id FOR UPDATE")
        for row in rows:
            try:
                resealed = sealer.reseal(row["secret"])
            except SecretsKeyError as exc:
                if row["enabled"]:
                    raise SecretsKeyError(f"subscription {row['subscription_id']}: {exc}") from None
                left.append(int(row["subscription_id"]))
                continue
            await conn.execute("UPDATE alert_subscriptions SET secret = $2 WHERE subscription_id = $1",
                               row["subscription_id"], resealed)
            sealed += 1
    return sealed, left


async def retry_dead(db: Database, outbox_id: int, now: datetime) -> None:
    status = await db.execute("UPDATE alert_outbox SET status = 'pending', due_at = $2, attempts = 0, "
                              "claimed_until = NULL WHERE outbox_id = $1 AND status = 'dead'", outbox_id, now)
    if status.endswith(" 0"):
        raise AlertNotFound(f"no dead-lettered notification {outbox_id}",
                            hint="`cityops alerts outbox --dead` lists them")
