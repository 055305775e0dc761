"""Service URLs: MQTT connection details and printing URLs without their passwords.

Standard library only: the device agent imports this, and its release carries no more
than it needs (devices/releases/build.py).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from cityops.errors import ConfigError


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to log or print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


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
