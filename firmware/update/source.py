"""Where this device downloads releases from: its own `[update] base_url`, never a URL from an
offer. The base must be https; plain http only when the config says `allow_http = true` and
the host is this machine (the demo, the tests). Credentials go to this origin only (scheme,
host and port), and a redirect to any other origin is refused (download.py).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from contract.releases import VERSION
from firmware.update.errors import UpdatesDisabled

Origin = tuple[str, str, int]
_DEFAULT_PORT = {"http": 80, "https": 443}


def origin(url: str) -> Origin | None:
    """(scheme, host, port) of an absolute http(s) URL; None for anything else."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORT or not host:
        return None
    return scheme, host, port or _DEFAULT_PORT[scheme]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ReleaseBase:
    url: str
    origin: Origin
    ca_file: Path | None = None     # the CA its https certificate chains to (None: the system's)

    @classmethod
    def parse(cls, url: str | None, *, allow_http: bool = False, ca_file: Path | None = None) -> ReleaseBase:
        """The configured base, checked; raises UpdatesDisabled saying what is wrong."""
        if not url:
            raise UpdatesDisabled("updates are disabled on this device: no base_url in [update]")
        where = origin(url)
        parts = urllib.parse.urlsplit(url)
        if where is None or parts.username or parts.password or parts.query or parts.fragment:
            raise UpdatesDisabled(f"[update] base_url {url!r} is not a plain http(s) URL")
        scheme, host, _port = where
        if scheme == "http" and not (allow_http and _loopback(host)):
            raise UpdatesDisabled(f"[update] base_url {url!r} is http: release downloads need https "
                                  "(plain http only with allow_http = true, to this machine)")
        return cls(url.rstrip("/"), where, ca_file)

    def release_url(self, version: str) -> str:
        if not VERSION.match(version):
            raise ValueError(f"not a release version: {version!r}")
        return f"{self.url}/releases/{urllib.parse.quote(version)}/agent.tar.gz"
