"""Service URLs: MQTT connection details and printing URLs without their passwords.

Standard library only: part of the contract, which the device agent carries.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from contract.errors import ConfigError


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to log or print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    # the hosts as written: a libpq URL may name several (h1:5432,h2:5432), which `port` cannot parse
    hosts = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{hosts}"))


@dataclass(frozen=True)
class MqttTarget:
    hostname: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    # mqtts://...?cafile=/path/ca.pem: trust only this CA (a private one, `cityops pki`),
    # as PostgreSQL URLs say sslrootcert=; without it the system's CAs
    cafile: str | None = None

    @classmethod
    def from_url(cls, url: str) -> MqttTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"not an MQTT URL: {redact_url(url)!r}",
                              hint="use mqtt://user:pass@host:1883 or mqtts://host:8883")
        tls = parts.scheme == "mqtts"
        query = parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"cafile"} or len(query.get("cafile", [])) > 1 or query.get("cafile") == [""]:
            raise ConfigError(f"unknown or repeated parameters in MQTT URL {redact_url(url)!r}",
                              hint="the only one is ?cafile=/path/ca.pem, on mqtts:// URLs")
        cafile = query["cafile"][0] if "cafile" in query else None
        if cafile and not tls:
            raise ConfigError(f"?cafile= on a plain mqtt:// URL: {redact_url(url)!r}",
                              hint="use mqtts://host:8883?cafile=... for TLS")
        return cls(hostname=parts.hostname, port=parts.port or (8883 if tls else 1883),
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None, tls=tls, cafile=cafile)

    def tls_context(self) -> ssl.SSLContext:
        """Verifies the broker's certificate and name, against `cafile` or the system's CAs."""
        try:
            return ssl.create_default_context(cafile=self.cafile)
        except (OSError, ssl.SSLError) as exc:  # missing, unreadable or not PEM
            raise ConfigError(f"cannot load the broker's CA file {self.cafile}: {exc}",
                              hint="`cityops pki init` writes ca.pem; check the path in ?cafile=") from None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiomqtt.Client."""
        kwargs: dict[str, Any] = {"hostname": self.hostname, "port": self.port,
                                  "username": self.username, "password": self.password}
        if self.tls:
            kwargs["tls_context"] = self.tls_context()
        return kwargs
