"""What a notification says, per channel, and how failures are retried (pure).

The payload is fixed when the transition is written (alert_outbox.payload), so a retry
sends the same body; `notification_id` (the outbox id) is the idempotency key in every form:
webhook header and body, the email's Message-ID, the MQTT message.
"""

from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from alerts.model import Alert, Transition

PAYLOAD_VERSION = 1
LED = {"critical": "red", "warning": "amber", "info": "green"}


def payload(alert: Alert, transition: Transition) -> dict[str, Any]:
    """The snapshot a notification carries (JSON-ready)."""
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {"v": PAYLOAD_VERSION, "alert_id": alert.alert_id, "transition": transition.kind,
            "at": iso(transition.at), "rule": alert.rule, "cause": alert.cause, "severity": alert.severity,
            "state": alert.state, "title": alert.title, "detail": transition.detail or alert.detail,
            "value": alert.value, "device_id": alert.device_id, "household_id": alert.household_id,
            "area": alert.area, "route_id": alert.route_id, "landlord_id": alert.landlord_id,
            "opened_at": iso(alert.opened_at), "escalation_level": alert.escalation_level,
            "members": [m.as_json() for m in alert.members]}


def headline(p: dict[str, Any]) -> str:
    verb = {"opened": "", "worsened": "worse: ", "escalated": f"ESCALATED (level {p['escalation_level']}): ",
            "resolved": "resolved: ", "acknowledged": "acknowledged: "}.get(p["transition"], "")
    return f"[CityOps {p['severity'].upper()}] {verb}{p['title']}"


def text_body(p: dict[str, Any]) -> str:
    lines = [headline(p), "", p["detail"] or "", "",
             f"alert {p['alert_id']} ({p['rule']}), opened {p['opened_at']}, now {p['state']}"]
    if p["transition"] in ("opened", "worsened", "escalated"):
        lines.append(f"acknowledge: cityops alerts ack {p['alert_id']} --by YOUR_NAME")
    return "\n".join(lines) + "\n"


def webhook_body(notification_id: int, p: dict[str, Any]) -> bytes:
    return json.dumps({"notification_id": notification_id, **p}, separators=(",", ":"), sort_keys=True).encode()


def email_message(notification_id: int, p: dict[str, Any], *, sender: str, to: str, domain: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = headline(p)
    # the same Message-ID on every retry: mail systems can drop a duplicate after a crash
    message["Message-ID"] = message_id(notification_id, domain)
    message["X-CityOps-Alert"] = str(p["alert_id"])
    message.set_content(text_body(p))
    return message


def message_id(notification_id: int, domain: str) -> str:
    return f"<alert-notification-{notification_id}@{domain}>"


def mqtt_message(notification_id: int, p: dict[str, Any]) -> bytes:
    """For a device (the frog box's LED): colour by severity, off when resolved."""
    led = "off" if p["state"] == "resolved" else LED.get(p["severity"], "amber")
    return json.dumps({"v": PAYLOAD_VERSION, "notification_id": notification_id, "alert_id": p["alert_id"],
                       "transition": p["transition"], "severity": p["severity"], "state": p["state"],
                       "led": led, "title": p["title"]}, separators=(",", ":")).encode()


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Pause after failed attempt number `attempt` (1-based): base, 2 base, 4 base, ... up to max."""
    return min(max_s, base_s * 2 ** max(0, attempt - 1))


def http_failure(status: int) -> bool | None:
    """None: delivered (2xx); True: temporary (408, 425, 429, 5xx); False: permanent (the rest)."""
    if 200 <= status < 300:
        return None
    return status in (408, 425, 429) or status >= 500
