"""Alerts end to end against real servers: PostgreSQL, a local webhook receiver (asyncio HTTP,
checking the HMAC, answering 500 when told to), a local aiosmtpd SMTP server, and Mosquitto.

Each test has a database of its own (the runner looks at whole tables) and a clock it moves."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import aiomqtt
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from alerts import signing
from alerts.runner import AlertsRunner
from alerts.sealing import Sealer, new_key
from alerts.store import acknowledge_alert, claim
from cityops.embedded.broker import EmbeddedBroker
from cityops.embedded.process import free_port
from cityops.settings import AlertsSettings
from cityops.storage import Database

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SECRET = "test-secret-0123456789"
KEY = new_key()
# the devices here report only their battery: the offline rule is kept out of the way
SETTINGS = AlertsSettings(backoff_base_s=60, backoff_max_s=600, max_attempts=3, send_timeout_s=2.0,
                          clear_hold=timedelta(minutes=30), escalate_after=timedelta(minutes=30),
                          offline_after_intervals=10_000, online_within_intervals=10_000,
                          secret_keys=[SecretStr(KEY)])


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


# --- a real webhook receiver -------------------------------------------------------------

@dataclass
class Hook:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """HTTP/1.1 on a free port: records every POST, checks its signature, answers `statuses` in
    turn (then 200), after `delay_s`."""

    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    received: list[Hook] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/cityops"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            sig = headers.get(signing.SIGNATURE_HEADER.lower(), "")
            stamp = headers.get(signing.TIMESTAMP_HEADER.lower(), "")
            expected = "v1=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < 300
            self.received.append(Hook(headers, body, fresh and hmac.compare_digest(sig, expected)))
            status = self.statuses.pop(0) if self.statuses else 200
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    yield receiver
    server.close()
    await server.wait_closed()


# --- a real SMTP server (aiosmtpd) -------------------------------------------------------

@dataclass
class MailHandler:
    """Accepts mail; `refuse` maps a recipient to the replies it gets in turn (then 250)."""

    refuse: dict[str, list[str]] = field(default_factory=dict)
    mail: list[Any] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        replies = self.refuse.get(address)
        if replies:
            return replies.pop(0) if len(replies) > 1 or not replies[0].startswith("550") else replies[0]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.mail.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[MailHandler, int]]:
    handler = MailHandler()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(handler, hostname="test.local"),
                                                            "127.0.0.1", 0)
    yield handler, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


# --- the database: one per test, migrated --------------------------------------------------


async def add_device(db: Database, device_id: str, battery_v: float, *, household: str | None = None,
                     kind: str = "frog") -> None:
    await db.execute("INSERT INTO devices (device_id, kind, household_id, registered_at, last_seen, battery_v) "
                     "VALUES ($1, $2, $3, $4, $4, $5)", device_id, kind, household, T0 - timedelta(days=1),
                     battery_v, )
    await db.execute("UPDATE devices SET last_seen = $2 WHERE device_id = $1", device_id, T0)


async def set_battery(db: Database, device_id: str, volts: float, seen: datetime) -> None:
    """A new report from the device."""
    await db.execute("UPDATE devices SET battery_v = $2, last_seen = $3 WHERE device_id = $1", device_id, volts,
                     seen)


async def subscribe(db: Database, channel: str, target: str = "", **fields: Any) -> int:
    values: dict[str, Any] = {"user_id": f"user-{channel}", "role": "operator", "channel": channel,
                              "target": target, "rules": ["battery_low"], **fields}
    if channel == "webhook":
        values["secret"] = Sealer([KEY]).seal(values.get("secret", SECRET))     # stored sealed, as the CLI does
    columns = list(values)
    subscription_id: int = await db.fetchval(
        f"INSERT INTO alert_subscriptions ({', '.join(columns)}) VALUES "
        f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) RETURNING subscription_id", *values.values())
    return subscription_id


def runner(db: Database, clock: Clock, settings: AlertsSettings = SETTINGS, **kw: Any) -> AlertsRunner:
    return AlertsRunner(db, settings, clock=clock, **kw)


async def outbox(db: Database) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch("SELECT * FROM alert_outbox ORDER BY outbox_id")]


async def events(db: Database, *kinds: str) -> list[str]:
    rows = await db.fetch("SELECT kind FROM alert_events WHERE kind = ANY($1) ORDER BY event_id", list(kinds))
    return [r["kind"] for r in rows]


# --- the tests ----------------------------------------------------------------------------

async def test_exactly_one_notification_per_transition_on_every_channel(
        fresh_db: Database, webhook: WebhookReceiver, smtp: tuple[MailHandler, int]) -> None:
    mail, port = smtp
    settings = SETTINGS.model_copy(update={"smtp_port": port})
    clock = Clock()
    await add_device(fresh_db, "frog-1", 3.40)
    await subscribe(fresh_db, "webhook", webhook.url)
    await subscribe(fresh_db, "email", "duty@council.example.org")
    await subscribe(fresh_db, "feed", user_id="amy")
    alerts = runner(fresh_db, clock, settings)

    first = await alerts.cycle()
    assert first.transitions == {"opened": 1} and first.sent == 3
    for minutes in (1, 2, 3):  # still low, nothing new to say
        clock.advance(minutes=minutes)
        assert (await alerts.cycle()).sent == 0
    await set_battery(fresh_db, "frog-1", 3.50, clock.advance(minutes=5))  # between the thresholds: nothing
    assert (await alerts.cycle()).transitions == {}
    await set_battery(fresh_db, "frog-1", 3.80, clock.advance(minutes=1))
    await alerts.cycle()                    # clear spell starts
    await set_battery(fresh_db, "frog-1", 3.80, clock.advance(minutes=31))
    last = await alerts.cycle()             # held long enough: resolved
    assert last.transitions == {"resolved": 1} and last.sent == 3

    assert [h.json["transition"] for h in webhook.received] == ["opened", "resolved"]
    assert all(h.signature_ok for h in webhook.received)
    ids = [h.headers[signing.DELIVERY_HEADER.lower()] for h in webhook.received]
    assert ids == [str(h.json["notification_id"]) for h in webhook.received] and len(set(ids)) == 2
    assert [m["Subject"] for m in mail.mail] == ["[CityOps WARNING] Battery low on frog-1",
                                                 "[CityOps WARNING] resolved: Battery low on frog-1"]
    assert len({m["Message-ID"] for m in mail.mail}) == 2
    feed = await fresh_db.fetch("SELECT user_id, title FROM notifications ORDER BY notification_id")
    assert [(r["user_id"], r["title"]) for r in feed] == [("amy", "Battery low on frog-1"),
                                                          ("amy", "Resolved: Battery low on frog-1")]
    assert {r["status"] for r in await outbox(fresh_db)} == {"sent"}
    assert await events(fresh_db, "opened", "resolved") == ["opened", "resolved"]
    assert len(await events(fresh_db, "sent")) == 6


async def test_webhook_500_is_retried_with_backoff_then_delivered_with_the_same_id(
        fresh_db: Database, webhook: WebhookReceiver) -> None:
    webhook.statuses = [500, 500]
    clock = Clock()
    await add_device(fresh_db, "frog-2", 3.3)
    await subscribe(fresh_db, "webhook", webhook.url)
    alerts = runner(fresh_db, clock)
    assert (await alerts.cycle()).retried == 1
    (row,) = await outbox(fresh_db)
    assert row["due_at"] == T0 + timedelta(seconds=60) and "HTTP 500" in row["last_error"]
    clock.advance(seconds=30)
    assert (await alerts.cycle()).retried == 0 and len(webhook.received) == 1  # not due yet
    clock.advance(seconds=31)
    assert (await alerts.cycle()).retried == 1                                 # second 500: 120 s more
    clock.advance(seconds=121)
    assert (await alerts.cycle()).sent == 1
    assert len(webhook.received) == 3 and all(h.signature_ok for h in webhook.received)
    assert len({h.headers[signing.IDEMPOTENCY_HEADER.lower()] for h in webhook.received}) == 1
    assert len({h.body for h in webhook.received}) == 1                        # the same body each time
    (row,) = await outbox(fresh_db)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 3, None)
    assert await events(fresh_db, "failed", "sent", "dead_lettered") == ["failed", "failed", "sent"]


async def test_an_unreachable_webhook_is_dead_lettered_after_max_attempts_with_the_reason(fresh_db: Database) -> None:
    clock = Clock()
    await add_device(fresh_db, "frog-3", 3.3)
    await subscribe(fresh_db, "webhook", f"http://127.0.0.1:{free_port()}/nobody-listens")
    await subscribe(fresh_db, "feed")
    alerts = runner(fresh_db, clock)
    report = await alerts.cycle()
    assert (report.sent, report.retried) == (1, 1)  # the feed went; the webhook waits for a retry
    for _ in range(2):
        clock.advance(minutes=10)
        report = await alerts.cycle()
    assert report.dead == 1
    dead = [r for r in await outbox(fresh_db) if r["channel"] == "webhook"]
    assert dead[0]["status"] == "dead" and dead[0]["attempts"] == 3 and "ConnectError" in dead[0]["last_error"]
    detail = await fresh_db.fetchval("SELECT detail FROM alert_events WHERE kind = 'dead_lettered'")
    assert detail.startswith("3 attempts failed: ConnectError")
    clock.advance(hours=1)
    assert (await alerts.cycle()).sent == 0  # dead stays dead until someone retries it


async def test_smtp_451_is_retried_and_550_is_dead_lettered_at_once(
        fresh_db: Database, smtp: tuple[MailHandler, int]) -> None:
    mail, port = smtp
    mail.refuse = {"later@council.example.org": ["451 4.3.0 mailbox busy, try later"],
                   "nobody@council.example.org": ["550 5.1.1 no such user"]}
    clock = Clock()
    await add_device(fresh_db, "frog-4", 3.3)
    await subscribe(fresh_db, "email", "later@council.example.org")
    await subscribe(fresh_db, "email", "nobody@council.example.org", user_id="u2")
    await subscribe(fresh_db, "email", "ok@council.example.org", user_id="u3")
    alerts = runner(fresh_db, clock, SETTINGS.model_copy(update={"smtp_port": port}))
    report = await alerts.cycle()
    assert (report.sent, report.retried, report.dead) == (1, 1, 1)
    clock.advance(minutes=2)
    assert (await alerts.cycle()).sent == 1
    assert sorted(m["To"] for m in mail.mail) == ["later@council.example.org", "ok@council.example.org"]
    rows = {r["target"]: r for r in await outbox(fresh_db)}
    assert rows["later@council.example.org"]["status"] == "sent"
    assert rows["later@council.example.org"]["attempts"] == 2
    dead = rows["nobody@council.example.org"]
    assert dead["status"] == "dead" and dead["attempts"] == 1 and "550" in dead["last_error"]
    assert "no such user" in dead["last_error"]


async def test_a_slow_webhook_does_not_hold_up_email(
        fresh_db: Database, webhook: WebhookReceiver, smtp: tuple[MailHandler, int]) -> None:
    mail, port = smtp
    webhook.delay_s = 5.0
    clock = Clock()
    await add_device(fresh_db, "frog-5", 3.3)
    await subscribe(fresh_db, "webhook", webhook.url)
    await subscribe(fresh_db, "email", "duty@council.example.org")
    settings = SETTINGS.model_copy(update={"smtp_port": port, "send_timeout_s": 0.5})
    cycle = asyncio.create_task(runner(fresh_db, clock, settings).cycle())
    report = await asyncio.wait_for(cycle, webhook.delay_s)  # done while the webhook still sits on it
    assert (report.sent, report.retried) == (1, 1) and len(mail.mail) == 1
    (hook,) = [r for r in await outbox(fresh_db) if r["channel"] == "webhook"]
    assert hook["status"] == "pending" and "no answer within 0.5 s" in hook["last_error"]


async def test_no_duplicate_after_a_restart_of_the_runner(fresh_db: Database, webhook: WebhookReceiver) -> None:
    clock = Clock()
    await add_device(fresh_db, "frog-6", 3.4)
    await add_device(fresh_db, "frog-7", 3.4)
    await subscribe(fresh_db, "webhook", webhook.url)
    # runner 1 evaluates, then "dies" before sending: the outbox rows are committed
    first = await runner(fresh_db, clock).evaluate()
    assert first.queued == 2 and webhook.received == []
    # runner 2 (a new process, same database) sends them, exactly once
    clock.advance(seconds=10)
    assert (await runner(fresh_db, clock).cycle()).sent == 2
    # runner 3: nothing is sent again, and the alerts are not opened again
    clock.advance(seconds=10)
    third = await runner(fresh_db, clock).cycle()
    assert (third.sent, third.queued, third.transitions) == (0, 0, {})
    assert len(webhook.received) == 2
    assert await fresh_db.fetchval("SELECT count(*) FROM alerts") == 2

    # a runner that dies between claiming and marking: the lease keeps others off it ...
    await set_battery(fresh_db, "frog-6", 3.1, clock.now())     # worse: critical, a new transition
    await runner(fresh_db, clock).evaluate()
    (claimed,) = await claim(fresh_db, clock.now(), SETTINGS)   # claimed, then the process dies
    assert (await runner(fresh_db, clock).deliver()).sent == 0
    # ... until the lease ends: then it goes, once, with the same idempotency key
    clock.advance(seconds=SETTINGS.lease_s + 1)
    assert (await runner(fresh_db, clock).deliver()).sent == 1
    assert len(webhook.received) == 3
    assert webhook.received[-1].json["notification_id"] == claimed.outbox_id
    assert webhook.received[-1].json["transition"] == "worsened"


async def test_two_runners_at_once_send_each_notification_once(fresh_db: Database, webhook: WebhookReceiver) -> None:
    clock = Clock()
    for i in range(10):
        await add_device(fresh_db, f"frog-{i:02d}", 3.3)
    await subscribe(fresh_db, "webhook", webhook.url)
    await subscribe(fresh_db, "feed")
    reports = await asyncio.gather(runner(fresh_db, clock).cycle(), runner(fresh_db, clock).cycle())
    assert sum(r.transitions.get("opened", 0) for r in reports) == 10
    assert sum(r.sent for r in reports) == 20
    ids = [h.json["notification_id"] for h in webhook.received]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert await fresh_db.fetchval("SELECT count(*) FROM notifications") == 10


async def test_escalation_notifies_the_escalation_recipients_until_acknowledged(
        fresh_db: Database, webhook: WebhookReceiver) -> None:
    clock = Clock()
    await add_device(fresh_db, "frog-8", 3.3)
    await subscribe(fresh_db, "feed", user_id="crew")
    await subscribe(fresh_db, "webhook", webhook.url, user_id="boss", escalation_level=1)
    alerts = runner(fresh_db, clock)
    await alerts.cycle()
    assert webhook.received == []                     # the boss hears only about escalations
    clock.advance(minutes=29)
    assert (await alerts.cycle()).transitions == {}
    clock.advance(minutes=1)
    assert (await alerts.cycle()).transitions == {"escalated": 1}
    (hook,) = webhook.received
    assert hook.json["transition"] == "escalated" and hook.json["escalation_level"] == 1
    alert_id = hook.json["alert_id"]
    await acknowledge_alert(fresh_db, alert_id, "duty officer", clock.advance(minutes=5))
    clock.advance(hours=3)
    assert (await alerts.cycle()).transitions == {}   # acknowledged: no more escalation
    assert len(webhook.received) == 1
    row = await fresh_db.fetchrow("SELECT state, acknowledged_by, escalation_level FROM alerts")
    assert row is not None
    assert dict(row) == {"state": "acknowledged", "acknowledged_by": "duty officer", "escalation_level": 1}
    assert await fresh_db.fetchval("SELECT count(*) FROM notifications WHERE user_id = 'crew'") == 1


async def test_quiet_hours_hold_a_householders_notification_until_morning(
        fresh_db: Database, smtp: tuple[MailHandler, int]) -> None:
    mail, port = smtp
    clock = Clock(datetime(2026, 1, 5, 23, 0, tzinfo=UTC))
    await add_device(fresh_db, "frog-9", 3.4, household="h-9")
    await subscribe(fresh_db, "email", "tenant@example.org", role="householder", household_id="h-9",
                    quiet_start=datetime(2000, 1, 1, 22).time(), quiet_end=datetime(2000, 1, 1, 7).time(),
                    timezone="Europe/London")
    alerts = runner(fresh_db, clock, SETTINGS.model_copy(update={"smtp_port": port}))
    report = await alerts.cycle()
    assert (report.queued, report.sent) == (1, 0)
    assert await events(fresh_db, "held") == ["held"]
    clock.at = datetime(2026, 1, 6, 6, 59, tzinfo=UTC)
    assert (await alerts.cycle()).sent == 0
    clock.at = datetime(2026, 1, 6, 7, 0, tzinfo=UTC)
    assert (await alerts.cycle()).sent == 1 and len(mail.mail) == 1


async def test_a_malformed_preference_is_reported_and_the_others_still_notified(fresh_db: Database) -> None:
    clock = Clock()
    await add_device(fresh_db, "frog-10", 3.3)
    bad_zone = await subscribe(fresh_db, "email", "a@example.org", quiet_start=datetime(2000, 1, 1, 22).time(),
                               quiet_end=datetime(2000, 1, 1, 7).time(), timezone="Mars/Olympus")
    bad_rule = await subscribe(fresh_db, "feed", user_id="typo", rules=["battery_lo"])
    good = await subscribe(fresh_db, "feed", user_id="fine")
    report = await runner(fresh_db, clock).cycle()
    assert [sid for sid, _ in report.preference_problems] == [bad_zone, bad_rule]
    problems = {r["subscription_id"]: r["problem"] for r in await fresh_db.fetch(
        "SELECT subscription_id, problem FROM alert_subscriptions")}
    assert problems[bad_zone].startswith("timezone: unknown time zone 'Mars/Olympus'")
    assert problems[bad_rule].startswith("rules: unknown rules ['battery_lo']")
    assert problems[good] is None
    assert [r["user_id"] for r in await fresh_db.fetch("SELECT user_id FROM notifications")] == ["fine"]
    await fresh_db.execute("UPDATE alert_subscriptions SET rules = '{battery_low}' WHERE subscription_id = $1",
                           bad_rule)
    clock.advance(minutes=1)
    await runner(fresh_db, clock).cycle()
    assert await fresh_db.fetchval("SELECT problem FROM alert_subscriptions WHERE subscription_id = $1",
                                   bad_rule) is None


async def test_mqtt_message_to_the_alerts_device_through_mosquitto(fresh_db: Database, mosquitto: EmbeddedBroker,
                                                                    unique: str) -> None:
    device = f"frog-{unique}"
    clock = Clock()
    await add_device(fresh_db, device, 3.3)
    await subscribe(fresh_db, "mqtt", "@device")
    topic = f"cityops/v1/devices/{device}/alert"
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=f"sub-{unique}") as sub:
        await sub.subscribe(topic, qos=1)
        report = await runner(fresh_db, clock, mqtt_url=mosquitto.url).cycle()
        assert report.sent == 1
        async with asyncio.timeout(5):
            message = await anext(aiter(sub.messages))
    assert str(message.topic) == topic and message.qos == 1
    assert isinstance(message.payload, bytes)
    body = json.loads(message.payload)
    assert (body["led"], body["transition"], body["severity"]) == ("red", "opened", "critical")
    (row,) = await outbox(fresh_db)
    assert row["status"] == "sent" and row["target"] == device
