"""Release downloads for devices: GET /releases/{version}/agent.tar.gz.

Authenticated per device (HTTP Basic: device id and its secret, checked against the stored
Mosquitto hash), resumable (a single `Range: bytes=a-b`, answered 206; an unsatisfiable
range 416), and limited: a byte token bucket shared by every download, and a cap on
downloads at once with at most one per device, past which a device gets 429 with
Retry-After. A client that takes no bytes for the idle timeout loses its connection and slot.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.types import Receive, Scope, Send

from cityops.storage import Database
from devices.releases.limiter import DownloadLimits, Slot, TokenBucket
from devices.secrets import verify_secret
from ops_api.deps import DB

log = logging.getLogger("ops_api.releases")
router = APIRouter(prefix="/releases", tags=["releases"])
basic = HTTPBasic(realm="cityops devices")
CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, or None for the whole file. Raises ValueError when the
    range cannot be satisfied. Several ranges are not supported: the whole file is sent."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "":
        if last == "" or int(last) == 0:
            raise ValueError("empty suffix range")
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError("range outside the file")
    return start, end


def limits(request: Request) -> DownloadLimits:
    state = request.app.state
    if getattr(state, "release_limits", None) is None:
        config = state.settings.releases
        state.release_limits = DownloadLimits(TokenBucket(config.download_bytes_per_s, config.download_burst_bytes),
                                              config.max_concurrent_downloads, config.download_idle_timeout_s)
    limits_: DownloadLimits = state.release_limits
    return limits_


async def authenticated_device(db: DB, credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> str:
    row = await db.fetchrow("SELECT s.secret_hash FROM device_secrets s JOIN devices d USING (device_id) "
                            "WHERE s.device_id = $1 AND d.status = 'active'", credentials.username)
    if row is None or not verify_secret(credentials.password, row["secret_hash"]):
        raise HTTPException(401, "unknown device or wrong secret",
                            headers={"WWW-Authenticate": 'Basic realm="cityops devices"'})
    return credentials.username


Device = Annotated[str, Depends(authenticated_device)]
Limits = Annotated[DownloadLimits, Depends(limits)]


async def _release_file(db: Database, version: str) -> tuple[Path, int, str]:
    row = await db.fetchrow("SELECT path, size_bytes, sha256 FROM releases WHERE version = $1", version)
    if row is None:
        raise HTTPException(404, f"no release {version}")
    path = Path(row["path"])
    if not await asyncio.to_thread(path.is_file):
        raise HTTPException(503, f"release {version} is published but its file is missing from the store")
    return path, row["size_bytes"], row["sha256"]


@router.get("/{version}/agent.tar.gz", summary="Download a release (devices only; resumable; rate-limited)")
async def download(version: str, db: DB, device: Device, limit: Limits,
                   range_: Annotated[str | None, Header(alias="Range")] = None) -> Response:
    path, size, sha256 = await _release_file(db, version)
    try:
        span = parse_range(range_, size)
    except ValueError:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    slot = limit.try_acquire(device)
    if slot is None:
        return Response("too many downloads at once, or this device's own is still running; come back later",
                        status_code=429, headers={"Retry-After": str(limit.retry_after_s(size))})
    first, last = span if span is not None else (0, size - 1)
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{sha256}"', "Content-Length": str(last - first + 1)}
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return _SlotStream(path, first, last, limit, slot, status_code=206 if span is not None else 200, headers=headers)


class _SlotStream(Response):
    """The file's bytes, paced by the shared bucket. The slot is given back when the stream ends;
    it ends early when the client takes no bytes for the idle timeout, goes away, or the slot
    was taken back (then the connection is dropped, and the device resumes with a Range)."""

    media_type = "application/gzip"

    def __init__(self, path: Path, first: int, last: int, limit: DownloadLimits, slot: Slot, *, status_code: int,
                 headers: dict[str, str]):
        super().__init__(status_code=status_code, headers=headers)
        self.path, self.first, self.last, self.limit, self.slot = path, first, last, limit, slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit, slot = self.limit, self.slot
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            with self.path.open("rb") as f:
                f.seek(self.first)
                left = self.last - self.first + 1
                while left > 0 and not slot.revoked:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        break
                    await limit.bucket.take(len(chunk))
                    left -= len(chunk)
                    async with asyncio.timeout(limit.idle_timeout_s):
                        await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
                    limit.progress(slot)
        except TimeoutError:
            log.info("release download by %s: no bytes taken for %g s; dropped", slot.device_id, limit.idle_timeout_s)
        except OSError:  # the device went away
            pass
        finally:
            limit.release(slot)
