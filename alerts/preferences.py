"""Who gets which alert, by which channel, and when (pure).

A subscription row (alert_subscriptions) is parsed into a `Subscription`; a row that cannot
work raises `InvalidPreference` naming the field, and the runner skips that row alone.

    rules          NULL: the role's defaults (ROLE_RULES); otherwise names from alerts.model.RULES
    min_severity   info | warning | critical
    household_id   only that household's alerts; required for householders
    landlord_id    only the alerts about that landlord organisation's homes; required for
                   landlord officers (role `landlord`: the case clocks of their homes)
    escalation     0: opened / worsened / resolved; N >= 1: escalations reaching level N or more
    quiet hours    local HH:MM-HH:MM in `timezone`: email, webhook and MQTT notifications are held
                   until the quiet hours end (not dropped); the in-app feed is never held, and
                   `critical` ones go at once unless CITYOPS_ALERTS__QUIET_HOURS_BYPASS=none
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.errors import InvalidPreference
from alerts.model import RULES, SEVERITY_RANK, Alert, Severity, TransitionKind

Channel = Literal["email", "webhook", "mqtt", "feed"]
CHANNELS: tuple[str, ...] = get_args(Channel)
Role = Literal["operator", "gritting_crew", "waste_crew", "householder", "admin", "landlord"]
ROLES: tuple[str, ...] = get_args(Role)
ALERT_DEVICE = "@device"       # mqtt target: the device the alert is about
MIN_SECRET_CHARS = 16

ROLE_RULES: dict[str, frozenset[str]] = {
    "operator": frozenset(RULES),
    "admin": frozenset(RULES),
    "gritting_crew": frozenset({"road_freeze", "route_treatment"}),
    "waste_crew": frozenset({"bin_overflow", "bin_fire", "bin_tilt"}),
    "householder": frozenset({"damp_risk", "device_offline", "battery_low", "sensor_stuck"}),
    "landlord": frozenset({"case_overdue", "case_due_soon"}),
}
ORDINARY: frozenset[str] = frozenset({"opened", "worsened", "resolved"})

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    zone: ZoneInfo

    def release(self, now: datetime) -> datetime | None:
        """When the quiet hours that `now` falls in end (UTC), or None when it is not quiet."""
        local = now.astimezone(self.zone)
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            quiet, end_day = self.start <= t < self.end, local.date()
        else:  # over midnight, e.g. 22:00-07:00
            quiet = t >= self.start or t < self.end
            end_day = local.date() + timedelta(days=1) if t >= self.start else local.date()
        if not quiet:
            return None
        return datetime.combine(end_day, self.end, tzinfo=self.zone).astimezone(now.tzinfo)


@dataclass(frozen=True)
class Subscription:
    subscription_id: int
    user_id: str
    role: str
    channel: Channel
    target: str = ""
    secret: str | None = None
    rules: frozenset[str] = frozenset(RULES)
    min_severity: Severity = "warning"
    household_id: str | None = None
    quiet: QuietHours | None = None
    escalation_level: int = 0
    landlord_id: str | None = None


def parse_quiet(text: str) -> tuple[time, time]:
    """'22:00-07:00' -> (22:00, 07:00)."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise InvalidPreference(f"quiet hours {text!r} are not HH:MM-HH:MM", field="quiet") from None
    return start, end


def parse_subscription(row: Mapping[str, Any]) -> Subscription:
    """Check one alert_subscriptions row; InvalidPreference names the first field that is wrong."""
    role, channel, target = row["role"], row["channel"], (row.get("target") or "").strip()
    if role not in ROLES:
        raise InvalidPreference(f"unknown role {role!r} (one of {', '.join(ROLES)})", field="role")
    if channel not in CHANNELS:
        raise InvalidPreference(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})", field="channel")
    secret = row.get("secret")
    if channel == "email" and not _EMAIL.match(target):
        raise InvalidPreference(f"{target!r} is not an email address", field="target")
    if channel == "webhook":
        url = urlsplit(target)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InvalidPreference(f"{target!r} is not an http(s) URL", field="target")
        if not secret or len(secret) < MIN_SECRET_CHARS:
            raise InvalidPreference(f"a webhook needs a secret of at least {MIN_SECRET_CHARS} characters",
                                    field="secret")
    if channel == "mqtt" and target != ALERT_DEVICE and not _DEVICE_ID.match(target):
        raise InvalidPreference(f"{target!r} is neither a device id nor {ALERT_DEVICE}", field="target")
    if channel == "feed" and target:
        raise InvalidPreference("the in-app feed takes no target", field="target")
    rules = row.get("rules")
    if rules is None:
        chosen = ROLE_RULES[role]
    else:
        unknown = sorted(set(rules) - set(RULES))
        if unknown or not rules:
            raise InvalidPreference(f"unknown rules {unknown} (known: {', '.join(RULES)})" if unknown
                                    else "an empty rule list would never match", field="rules")
        chosen = frozenset(rules)
    severity: Severity = row.get("min_severity") or "warning"
    if severity not in SEVERITY_RANK:
        raise InvalidPreference(f"unknown severity {severity!r}", field="min_severity")
    household = row.get("household_id")
    if role == "householder" and not household:
        raise InvalidPreference("a householder's subscription needs a household_id", field="household_id")
    landlord = row.get("landlord_id")
    if role == "landlord" and not landlord:
        raise InvalidPreference("a landlord officer's subscription needs a landlord_id", field="landlord_id")
    level = int(row.get("escalation_level") or 0)
    if level < 0:
        raise InvalidPreference("escalation_level is 0 (ordinary) or more", field="escalation_level")
    return Subscription(int(row["subscription_id"]), str(row["user_id"]), role, channel, target, secret, chosen,
                        severity, household, _quiet(row), level, landlord)


def _quiet(row: Mapping[str, Any]) -> QuietHours | None:
    start, end, zone = row.get("quiet_start"), row.get("quiet_end"), row.get("timezone") or "UTC"
    if start is None and end is None:
        return None
    if start is None or end is None or start == end:
        raise InvalidPreference("quiet hours need a start and a different end", field="quiet")
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidPreference(f"unknown time zone {zone!r} (an IANA name like Europe/London)",
                                field="timezone") from None
    return QuietHours(start, end, tz)


def wants(sub: Subscription, alert: Alert, kind: TransitionKind) -> bool:
    """Whether this subscription is told about this transition of this alert."""
    if sub.escalation_level > 0:
        if kind != "escalated" or alert.escalation_level < sub.escalation_level:
            return False
    elif kind not in ORDINARY:
        return False
    if alert.rule not in sub.rules or SEVERITY_RANK[alert.severity] < SEVERITY_RANK[sub.min_severity]:
        return False
    if sub.household_id is not None and alert.household_id != sub.household_id:
        return False
    if sub.landlord_id is not None and alert.landlord_id != sub.landlord_id:
        return False
    return not (sub.channel == "mqtt" and sub.target == ALERT_DEVICE and alert.device_id is None)


def due_at(sub: Subscription, severity: Severity, now: datetime, bypass: str) -> datetime:
    """Now, or the end of the subscriber's quiet hours (held, sent then)."""
    if sub.quiet is None or sub.channel == "feed" or (bypass == "critical" and severity == "critical"):
        return now
    return sub.quiet.release(now) or now
