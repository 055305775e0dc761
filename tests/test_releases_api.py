"""The download endpoint over real HTTP (uvicorn on a free port, real PostgreSQL): device
authentication against the stored hash, Range requests, and the shared limits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from cityops.storage import Database
from devices import registry
from devices.releases import store
from devices.releases.limiter import TokenBucket
from ops_api.routes.releases import parse_range
from tests.releases_helpers import api_settings, build, fleet_key, register, serving, version


@pytest.fixture
async def published(db: Database, unique: str, tmp_path: Path) -> tuple[store.Release, bytes, str, str]:
    pair, key = fleet_key(tmp_path / "keys")
    built = build(version(unique, 1), tmp_path / "dist", key)
    release = await store.publish_release(db, built.archive, built.signature, pair.public_key, tmp_path / "store")
    device_id = f"{unique}-frog"
    return release, built.archive.read_bytes(), device_id, await register(db, device_id)


def test_range_headers() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=10-", 100) == (10, 99)
    assert parse_range("bytes=10-19", 100) == (10, 19)
    assert parse_range("bytes=90-500", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=0-1,5-6", 100) is None  # several ranges: the whole file
    for bad in ("bytes=100-", "bytes=20-10", "bytes=-0"):
        with pytest.raises(ValueError):
            parse_range(bad, 100)


async def test_a_device_downloads_with_its_own_secret_and_resumes_with_a_range(
        db: Database, tmp_path: Path, published: tuple[store.Release, bytes, str, str]) -> None:
    release, data, device_id, secret = published
    url = f"/releases/{release.version}/agent.tar.gz"
    async with serving(api_settings(tmp_path / "store"), db) as base, httpx.AsyncClient(base_url=base) as http:
        whole = await http.get(url, auth=(device_id, secret))
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["accept-ranges"] == "bytes" and whole.headers["etag"] == f'"{release.sha256}"'
        rest = await http.get(url, auth=(device_id, secret), headers={"Range": f"bytes={len(data) // 3}-"})
        assert rest.status_code == 206 and rest.content == data[len(data) // 3:]
        assert rest.headers["content-range"] == f"bytes {len(data) // 3}-{len(data) - 1}/{len(data)}"
        past = await http.get(url, auth=(device_id, secret), headers={"Range": f"bytes={len(data)}-"})
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(data)}"

        assert (await http.get(url)).status_code == 401
        assert (await http.get(url, auth=(device_id, "guess"))).status_code == 401
        assert (await http.get(url, auth=("nobody-here", secret))).status_code == 401
        assert (await http.get("/releases/0.0.0-none/agent.tar.gz", auth=(device_id, secret))).status_code == 404
        await registry.retire_device(db, device_id, "stolen")
        assert (await http.get(url, auth=(device_id, secret))).status_code == 401  # retired: no more downloads


async def test_downloads_share_the_byte_rate_and_past_the_cap_get_429_with_retry_after(
        db: Database, tmp_path: Path, published: tuple[store.Release, bytes, str, str]) -> None:
    release, data, device_id, secret = published
    rate = 40_000
    settings = api_settings(tmp_path / "store", download_bytes_per_s=rate, download_burst_bytes=8_000,
                            max_concurrent_downloads=1)
    url = f"/releases/{release.version}/agent.tar.gz"
    async with serving(settings, db) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        started = time.monotonic()
        first = asyncio.create_task(http.get(url, auth=(device_id, secret)))
        await asyncio.sleep(0.3)
        second = await http.get(url, auth=(device_id, secret))
        assert second.status_code == 429
        assert int(second.headers["retry-after"]) == max(1, -(-len(data) // rate))
        response = await first
        elapsed = time.monotonic() - started
        assert response.status_code == 200 and response.content == data
        assert elapsed >= (len(data) - 8_000) / rate * 0.9, f"{len(data)} bytes in {elapsed:.2f} s: not limited"
        # the slot is free again once the first download is done, or when a device goes away mid-way
        assert (await http.get(url, auth=(device_id, secret), headers={"Range": "bytes=-10"})).status_code == 206
        async with http.stream("GET", url, auth=(device_id, secret)) as partial:
            async for _chunk in partial.aiter_bytes():
                break  # a truncated download: the device lost its link
        for _attempt in range(50):  # the server notices the closed connection at its next write
            again = await http.get(url, auth=(device_id, secret), headers={"Range": "bytes=-10"})
            if again.status_code != 429:
                break
            await asyncio.sleep(0.1)
        assert again.status_code == 206


async def test_the_token_bucket_paces_bytes() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=1000, burst=100, clock=lambda: now[0])
    assert bucket.wait_time(100) == 0
    await bucket.take(100)
    assert bucket.wait_time(50) == pytest.approx(0.05)
    now[0] += 1.0
    assert bucket.wait_time(100) == 0  # refilled, but never beyond the burst
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)
