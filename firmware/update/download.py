"""Download a release over HTTP(S) into a `.part` file, resuming with a Range request.

Authenticated as the device (HTTP Basic: device id and its MQTT secret). A 429 or 503
says when to come back (Retry-After); 401/403/404 are permanent for this offer. The file
is complete when it has the offered size; its digest is checked by the caller.
Stdlib only (urllib), so the agent carries no HTTP client dependency.
"""

from __future__ import annotations

import base64
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from firmware.update.errors import DownloadFailed

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


def download(url: str, dest: Path, size: int, credentials: Credentials, *, timeout_s: float = 30.0,
             cancelled: threading.Event | None = None,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Fetch `url` into `dest` (a .part file kept between attempts); returns `dest` once it
    holds `size` bytes. Raises DownloadFailed (with `retry_after_s` / `permanent`)."""
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
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:  # our part is not a prefix of theirs: start again
            dest.unlink()
            raise DownloadFailed("the partial download did not fit the file; starting again", retry_after_s=0) from None
        raise DownloadFailed(f"HTTP {exc.code} from {url}", retry_after_s=_retry_after(exc.headers),
                             permanent=exc.code in PERMANENT) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadFailed(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
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
