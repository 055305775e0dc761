"""Preferences, quiet hours, webhook signatures and messages (pure)."""

import hashlib
import hmac
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts import messages, signing
from alerts.errors import InvalidPreference
from alerts.model import RULES, Alert, Transition, TransitionKind
from alerts.preferences import ROLE_RULES, due_at, parse_quiet, parse_subscription, wants

NOW = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)  # 23:30 in London in winter


def row(**fields: Any) -> dict[str, Any]:
    return {"subscription_id": 1, "user_id": "u1", "role": "operator", "channel": "feed", "target": "", **fields}


def alert(**fields: Any) -> Alert:
    base: dict[str, Any] = dict(alert_id=7, rule="damp_risk", cause="damp_risk:frog-1", severity="warning",
                                state="open", title="Damp risk high", detail="", opened_at=NOW, last_firing_at=NOW,
                                device_id="frog-1", household_id="h-1")
    return Alert(**{**base, **fields})


@pytest.mark.parametrize(("fields", "field"), [
    ({"role": "tenant"}, "role"),
    ({"channel": "sms"}, "channel"),
    ({"channel": "email", "target": "not-an-address"}, "target"),
    ({"channel": "webhook", "target": "ftp://x", "secret": "s" * 20}, "target"),
    ({"channel": "webhook", "target": "https://hooks.example.org/x", "secret": "short"}, "secret"),
    ({"channel": "mqtt", "target": "Not A Device"}, "target"),
    ({"target": "someone"}, "target"),
    ({"rules": ["damp_risk", "typo_rule"]}, "rules"),
    ({"rules": []}, "rules"),
    ({"min_severity": "loud"}, "min_severity"),
    ({"role": "householder"}, "household_id"),
    ({"quiet_start": time(22)}, "quiet"),
    ({"quiet_start": time(22), "quiet_end": time(7), "timezone": "Mars/Olympus"}, "timezone"),
    ({"escalation_level": -1}, "escalation_level"),
])
def test_malformed_preferences_name_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPreference) as caught:
        parse_subscription(row(**fields))
    assert caught.value.field == field


def test_role_defaults_and_household_scope() -> None:
    crew = parse_subscription(row(role="gritting_crew"))
    assert crew.rules == ROLE_RULES["gritting_crew"] == {"road_freeze", "route_treatment"}
    assert not wants(crew, alert(), "opened")
    home = parse_subscription(row(role="householder", household_id="h-1"))
    assert wants(home, alert(), "opened")
    assert not wants(home, alert(household_id="h-2"), "opened")
    assert not wants(home, alert(rule="bin_fire", cause="bin_fire:b1"), "opened")
    assert set(ROLE_RULES["operator"]) == set(RULES)


def test_ordinary_and_escalation_recipients() -> None:
    ordinary = parse_subscription(row())
    boss = parse_subscription(row(escalation_level=2))
    kinds: tuple[TransitionKind, ...] = ("opened", "worsened", "resolved", "escalated", "acknowledged")
    assert [k for k in kinds if wants(ordinary, alert(), k)] == ["opened", "worsened", "resolved"]
    assert not wants(boss, alert(escalation_level=1), "escalated")
    assert wants(boss, alert(escalation_level=2), "escalated")
    assert not wants(boss, alert(escalation_level=2), "opened")
    picky = parse_subscription(row(min_severity="critical"))
    assert not wants(picky, alert(), "opened") and wants(picky, alert(severity="critical"), "opened")
    device = parse_subscription(row(channel="mqtt", target="@device"))
    assert wants(device, alert(), "opened") and not wants(device, alert(device_id=None), "opened")


def test_quiet_hours_hold_until_their_end_and_critical_bypasses() -> None:
    sub = parse_subscription(row(channel="email", target="a@example.org", quiet_start=time(22),
                                 quiet_end=time(7), timezone="Europe/London"))
    assert due_at(sub, "warning", NOW, "critical") == datetime(2026, 1, 6, 7, 0, tzinfo=UTC)
    assert due_at(sub, "critical", NOW, "critical") == NOW
    assert due_at(sub, "critical", NOW, "none") == datetime(2026, 1, 6, 7, 0, tzinfo=UTC)
    early = datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
    assert due_at(sub, "warning", early, "critical") == datetime(2026, 1, 6, 7, 0, tzinfo=UTC)
    day = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
    assert due_at(sub, "warning", day, "critical") == day
    summer = datetime(2026, 7, 1, 5, 30, tzinfo=UTC)  # 06:30 BST: quiet until 07:00 BST = 06:00 UTC
    assert due_at(sub, "warning", summer, "critical") == datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
    feed = parse_subscription(row(quiet_start=time(22), quiet_end=time(7)))
    assert due_at(feed, "warning", NOW, "critical") == NOW  # the feed is never held


@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
       st.times(), st.times())
def test_a_held_notification_is_released_at_most_a_day_later_outside_the_quiet_hours(
        now: datetime, start: time, end: time) -> None:
    if start == end:
        return
    sub = parse_subscription(row(channel="email", target="a@example.org", quiet_start=start, quiet_end=end,
                                 timezone="Europe/London"))
    due = due_at(sub, "warning", now, "critical")
    assert now <= due <= now + timedelta(days=1, hours=1)
    assert sub.quiet is not None and sub.quiet.release(due) is None  # not quiet any more at that moment


def test_parse_quiet() -> None:
    assert parse_quiet("22:00-07:30") == (time(22), time(7, 30))
    with pytest.raises(InvalidPreference):
        parse_quiet("late")


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    body = b'{"alert_id":1}'
    headers = signing.signed_headers("s3cret-s3cret-s3cret", 1_767_000_000, body, 42)
    expected = hmac.new(b"s3cret-s3cret-s3cret", b"1767000000." + body, hashlib.sha256).hexdigest()
    assert headers[signing.SIGNATURE_HEADER] == f"v1={expected}"
    assert headers[signing.DELIVERY_HEADER] == headers[signing.IDEMPOTENCY_HEADER] == "42"
    ok = signing.verify("s3cret-s3cret-s3cret", "1767000000", f"v1={expected}", body, now=1_767_000_100)
    assert ok
    assert not signing.verify("other-secret-other", "1767000000", f"v1={expected}", body, now=1_767_000_100)
    assert not signing.verify("s3cret-s3cret-s3cret", "1767000000", f"v1={expected}", body + b" ",
                              now=1_767_000_100)
    assert not signing.verify("s3cret-s3cret-s3cret", "1767000000", f"v1={expected}", body, now=1_767_001_000)


def test_messages_carry_the_notification_id() -> None:
    p = messages.payload(alert(), Transition("opened", NOW, "level high for 3 days"))
    email = messages.email_message(99, p, sender="alerts@x.org", to="a@example.org", domain="x.org")
    assert email["Message-ID"] == "<alert-notification-99@x.org>"
    assert email["Subject"] == "[CityOps WARNING] Damp risk high"
    assert "cityops alerts ack 7" in email.get_content()
    assert b'"notification_id":99' in messages.webhook_body(99, p)
    assert b'"led":"amber"' in messages.mqtt_message(99, p)
    resolved = messages.payload(alert(state="resolved"), Transition("resolved", NOW))
    assert b'"led":"off"' in messages.mqtt_message(100, resolved)


def test_backoff_and_http_classification() -> None:
    assert [messages.backoff_s(n, 30, 300) for n in (1, 2, 3, 4, 5)] == [30, 60, 120, 240, 300]
    assert [messages.http_failure(s) for s in (200, 204, 500, 503, 429, 408, 400, 404, 301)] == \
        [None, None, True, True, True, True, False, False, False]
