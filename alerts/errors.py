"""The alerts package's exceptions.

    CityOpsError                     (cityops.errors)
     +-- AlertsError                 every error the alerts raise on purpose
          +-- AlertNotFound          no alert (or subscription) with that id
          +-- InvalidTransition      e.g. acknowledging a resolved alert
          +-- InvalidPreference      a subscription row that cannot work (bad channel, target,
          |                          time zone, quiet hours, rule name); the runner skips it and
          |                          writes the reason to alert_subscriptions.problem
          +-- SecretsKeyError        webhook secrets cannot be sealed or opened: no key, a wrong
          |                          key, a secret stored in clear (alerts/sealing.py)
          +-- DeliveryError          one notification could not be sent
               +-- TemporaryFailure      worth retrying: timeout, refused connection, HTTP 5xx/429,
               |                         SMTP 4xx
               +-- PermanentFailure      retrying cannot help: HTTP 4xx, SMTP 5xx, no such device;
                                         dead-lettered at once

Each carries `hint`; delivery errors carry `channel` and `target`, preference errors `field`.
"""

from __future__ import annotations

from cityops.errors import CityOpsError


class AlertsError(CityOpsError):
    """Base of the alerts' deliberate errors."""


class AlertNotFound(AlertsError):
    hint = "`cityops alerts list --all` shows the alerts and their ids"


class InvalidTransition(AlertsError):
    hint = "only open alerts can be acknowledged; resolved ones are history"


class InvalidPreference(AlertsError):
    hint = "see docs/alerts.md: channels email|webhook|mqtt|feed, quiet hours HH:MM-HH:MM, IANA time zones"

    def __init__(self, message: str, *, field: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class SecretsKeyError(AlertsError):
    hint = ("CITYOPS_ALERTS__SECRET_KEYS='[\"<key>\"]' (cityops alerts new-key makes one); after changing "
            "keys, cityops alerts seal-secrets")


class DeliveryError(AlertsError):
    def __init__(self, message: str, *, channel: str = "", target: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.channel = channel
        self.target = target


class TemporaryFailure(DeliveryError):
    hint = "retried with backoff; dead-lettered after CITYOPS_ALERTS__MAX_ATTEMPTS attempts"


class PermanentFailure(DeliveryError):
    hint = "fix the subscription's target, then `cityops alerts retry OUTBOX_ID`"
