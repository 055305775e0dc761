"""Sending one notification by webhook, email or MQTT (the adapters at the edge).

Every send is bounded by `send_timeout_s` and the runner sends many at once, so one slow
receiver holds up nobody else. Third-party errors are translated here into
`TemporaryFailure` (retry with backoff) or `PermanentFailure` (dead-letter now).

    webhook   POST of the JSON payload, signed (alerts/signing.py); 2xx delivered,
              408/425/429/5xx and network errors temporary, other statuses permanent
    email     aiosmtplib to the configured server; SMTP 4xx temporary, 5xx permanent;
              the Message-ID is built from the notification id (the same on every retry)
    mqtt      QoS 1 to cityops/v1/devices/{device_id}/alert, waiting for the broker's PUBACK
"""

from __future__ import annotations

import logging
import time
from contextlib import AsyncExitStack
from types import TracebackType

import aiomqtt
import aiosmtplib
import httpx

from alerts import messages, signing
from alerts.errors import PermanentFailure, SecretsKeyError, TemporaryFailure
from alerts.sealing import sealer_for
from alerts.store import OutboxItem
from cityops.mqtt import MqttTarget
from cityops.settings import AlertsSettings, redact_url
from contract.telemetry import TOPIC_ROOT

log = logging.getLogger("alerts.senders")


def alert_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/alert"


class Senders:
    """The open clients for one delivery pass: `async with Senders(...) as s: await s.send(item)`."""

    def __init__(self, settings: AlertsSettings, mqtt_url: str | None) -> None:
        self.settings = settings
        self.mqtt_url = mqtt_url
        self._sealer = sealer_for(settings)
        self._stack = AsyncExitStack()
        self._http: httpx.AsyncClient | None = None
        self._mqtt: aiomqtt.Client | None = None

    async def __aenter__(self) -> Senders:
        timeout = httpx.Timeout(self.settings.send_timeout_s)
        self._http = await self._stack.enter_async_context(
            httpx.AsyncClient(timeout=timeout, follow_redirects=False))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self._stack.aclose()
        except aiomqtt.MqttError as exc:  # a broker that went away mid-pass: nothing left to close
            log.warning("closing the MQTT connection: %s", exc)

    async def send(self, item: OutboxItem) -> None:
        match item.channel:
            case "webhook":
                await self.webhook(item)
            case "email":
                await self.email(item)
            case "mqtt":
                await self.mqtt(item)
            case _:
                raise PermanentFailure(f"no sender for channel {item.channel!r}", channel=item.channel)

    async def webhook(self, item: OutboxItem) -> None:
        assert self._http is not None
        if not item.secret:
            raise PermanentFailure("the subscription has no webhook secret", channel="webhook", target=item.target)
        if self._sealer is None:
            raise PermanentFailure("no key to open the webhook secret with (CITYOPS_ALERTS__SECRET_KEYS)",
                                   channel="webhook", target=item.target)
        try:
            secret = self._sealer.open(item.secret)
        except SecretsKeyError as exc:
            raise PermanentFailure(str(exc), channel="webhook", target=item.target) from None
        body = messages.webhook_body(item.outbox_id, item.payload)
        headers = signing.signed_headers(secret, int(time.time()), body, item.outbox_id)
        try:
            response = await self._http.post(item.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"{type(exc).__name__}: {exc or 'no answer'}", channel="webhook",
                                   target=item.target) from None
        temporary = messages.http_failure(response.status_code)
        if temporary is None:
            return
        error = f"HTTP {response.status_code} {response.reason_phrase}: {response.text[:200]}".rstrip(": ")
        raise (TemporaryFailure if temporary else PermanentFailure)(error, channel="webhook", target=item.target)

    async def email(self, item: OutboxItem) -> None:
        s = self.settings
        message = messages.email_message(item.outbox_id, item.payload, sender=s.smtp_from, to=item.target,
                                         domain=s.message_id_domain)
        try:
            await aiosmtplib.send(message, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
                                  password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                                  start_tls=s.smtp_starttls, timeout=s.send_timeout_s)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            cls = TemporaryFailure if all(400 <= c < 500 for c in codes) else PermanentFailure
            raise cls(f"SMTP refused the recipient: {text}", channel="email", target=item.target) from None
        except aiosmtplib.SMTPResponseException as exc:
            cls = TemporaryFailure if 400 <= exc.code < 500 else PermanentFailure
            raise cls(f"SMTP {exc.code} {exc.message}", channel="email", target=item.target) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"SMTP server {s.smtp_host}:{s.smtp_port}: {type(exc).__name__}: {exc}",
                                   channel="email", target=item.target) from None

    async def mqtt(self, item: OutboxItem) -> None:
        client = await self._mqtt_client()
        try:
            await client.publish(alert_topic(item.target), messages.mqtt_message(item.outbox_id, item.payload),
                                 qos=1)
        except aiomqtt.MqttError as exc:
            self._mqtt = None  # connect afresh for the next one
            raise TemporaryFailure(f"MQTT publish failed: {exc}", channel="mqtt", target=item.target) from None

    async def _mqtt_client(self) -> aiomqtt.Client:
        if self._mqtt is not None:
            return self._mqtt
        if self.mqtt_url is None:
            raise PermanentFailure("no MQTT broker configured for device messages", channel="mqtt")
        target = MqttTarget.from_url(self.mqtt_url)
        client = aiomqtt.Client(**target.client_kwargs(), identifier=self.settings.mqtt_client_id,
                                timeout=self.settings.send_timeout_s)
        try:
            self._mqtt = await self._stack.enter_async_context(client)
        except aiomqtt.MqttError as exc:
            raise TemporaryFailure(f"cannot reach the MQTT broker at {redact_url(self.mqtt_url)}: {exc}",
                                   channel="mqtt") from None
        return self._mqtt
