"""Download a release from the device's own base (source.py) into a `.part` file, resuming
with a Range request.

Authenticated as the device (HTTP Basic: device id and its MQTT secret), so the secret goes
only to the configured origin: the URL is built from the base, redirects to another origin
(another host, port or scheme) are refused before anything is sent there, and proxies from
the environment are not used. A 429 or 503 says when to come back (Retry-After);
401/403/404 are permanent for this offer. The file is complete when it has the offered size;
its digest is checked by the caller. Stdlib only (urllib): no HTTP client dependency.
"""

from __future__ import annotations

import base64
import logging
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.update.errors import DownloadFailed
from firmware.update.source import ReleaseBase, origin

log = logging.getLogger("firmware.update.download")

CHUNK = 1 << 16
PERMANENT = {400, 401, 403, 404, 410}


@dataclass(frozen=True)
class Credentials:
    device_id: str
    secret: str

    def header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.device_id}:{self.secret}".encode()).decode()


def _retry_after(headers: object) -> float | None:
    value = getattr(headers, "get", lambda _k: None)("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the base's origin: the request carries the device's secret."""

    def __init__(self, base: ReleaseBase):
        self.base = base

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        if origin(newurl) != self.base.origin:
            fp.close()
            raise DownloadFailed(f"{req.full_url} redirected to {urllib.parse.urlsplit(newurl).netloc or newurl}, "
                                 "another origin: refused (the device's secret goes to its base_url only)",
                                 permanent=True, remember=False)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def opener(base: ReleaseBase) -> urllib.request.OpenerDirector:
    """No proxies from the environment, same-origin redirects only, the configured CA."""
    try:
        tls = ssl.create_default_context(cafile=str(base.ca_file) if base.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise DownloadFailed(f"cannot load the CA file {base.ca_file}: {exc}", permanent=True) from None
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls),
                                       _SameOrigin(base))


def download(base: ReleaseBase, version: str, dest: Path, size: int, credentials: Credentials, *,
             timeout_s: float = 30.0, cancelled: threading.Event | None = None,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Fetch release `version` from `base` into `dest` (a .part file kept between attempts);
    returns `dest` once it holds `size` bytes. Raises DownloadFailed (`retry_after_s`, `permanent`)."""
    url = base.release_url(version)
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = dest.stat().st_size if dest.exists() else 0
    if have > size:  # not this release's file: start again
        dest.unlink()
        have = 0
    if have == size:
        return dest
    request = urllib.request.Request(url, headers={"Authorization": credentials.header()})
    if have:
        request.add_header("Range", f"bytes={have}-")
        log.info("resuming %s at byte %d of %d", url, have, size)
    try:
        response = opener(base).open(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:  # our part is not a prefix of theirs: start again
            dest.unlink()
            raise DownloadFailed("the partial download did not fit the file; starting again", retry_after_s=0) from None
        raise DownloadFailed(f"HTTP {exc.code} from {url}", retry_after_s=_retry_after(exc.headers),
                             permanent=exc.code in PERMANENT) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLCertVerificationError):  # not this base, or not our CA: stop here
            raise DownloadFailed(f"{url}: certificate not trusted ({reason.verify_message}); a council CA goes in "
                                 "[update] ca_file or [mqtt] ca_file", permanent=True, remember=False) from None
        raise DownloadFailed(f"cannot reach {url}: {reason}") from None
    with response:
        if response.status == 206:
            mode = "ab"
        else:  # 200: the server sent the whole file
            mode, have = "wb", 0
        try:
            with dest.open(mode) as out:
                while chunk := response.read(CHUNK):
                    if cancelled is not None and cancelled.is_set():
                        raise DownloadFailed("download cancelled (the agent is stopping)")
                    out.write(chunk)
                    have += len(chunk)
                    if have > size:
                        break
                    if progress is not None:
                        progress(have, size)
        except OSError as exc:
            raise DownloadFailed(f"download of {url} interrupted at byte {have}: {exc}") from None
    if have > size:
        dest.unlink()
        raise DownloadFailed(f"{url} is larger than the offered {size} bytes", permanent=True)
    if have < size:
        raise DownloadFailed(f"download of {url} ended at byte {have} of {size}; will resume", retry_after_s=0)
    return dest
