"""MQTT connection details from a URL, shared by every service that talks to the broker."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt

from cityops.errors import BrokerUnavailable, ConfigError
from cityops.settings import redact_url


@dataclass(frozen=True)
class MqttTarget:
    hostname: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def from_url(cls, url: str) -> MqttTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"not an MQTT URL: {redact_url(url)!r}",
                              hint="use mqtt://user:pass@host:1883 or mqtts://host:8883")
        tls = parts.scheme == "mqtts"
        return cls(hostname=parts.hostname, port=parts.port or (8883 if tls else 1883),
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None, tls=tls)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiomqtt.Client."""
        kwargs: dict[str, Any] = {"hostname": self.hostname, "port": self.port,
                                  "username": self.username, "password": self.password}
        if self.tls:
            kwargs["tls_context"] = ssl.create_default_context()
        return kwargs


async def check_broker(url: str, timeout_s: float = 5.0) -> None:
    """Connect and disconnect once; raise BrokerUnavailable with the cause if that fails."""
    target = MqttTarget.from_url(url)
    try:
        async with aiomqtt.Client(**target.client_kwargs(), timeout=timeout_s):
            pass
    except aiomqtt.MqttError as exc:
        raise BrokerUnavailable(f"cannot connect to the MQTT broker at {redact_url(url)}: {exc}") from None
