"""Issue 18, part 3: update offers that cannot be turned against the device, and download slots
one device cannot hog. Real parts throughout: the API on uvicorn, PostgreSQL, Mosquitto, the
launcher and agents as processes, and an attacker's HTTP server on another port of this
machine (another origin) that records every request it gets.

The attacks, each refused with nothing sent to the attacker:
- an offer naming the attacker's URL (the old offer format, or a URL slipped into a signed one);
- the configured base redirecting to another origin;
- a genuine older release (1.0.0 while running 2.4.0), an expired offer, an offer replayed from
  an earlier rollout, an offer with any field changed or signed by another key;
- one device taking every download slot, or holding one while taking no bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityops.storage import Database
from contract.releases import UpdateOffer, offer_from_config, version_key
from devices.releases import service, store
from devices.releases.errors import RolloutError
from devices.releases.limiter import DownloadLimits, TokenBucket
from devices.releases.offers import check_terms, sign_offer
from devices.releases.signing import KeyPair
from devices.releases.store import Release
from firmware.update.download import Credentials
from firmware.update.errors import UpdatesDisabled
from firmware.update.layout import Layout
from firmware.update.source import ReleaseBase
from firmware.update.updater import Updater
from tests.agent_helpers import collecting
from tests.conftest import BrokerInstance
from tests.pki_helpers import pki
from tests.releases_helpers import (
    agent_source_copy,
    api_settings,
    build,
    fleet_key,
    launched,
    make_device,
    register,
    serving,
    signed_offer,
    steps,
    version,
    wait_until,
)


@dataclass
class Seen:
    path: str
    authorization: str | None


@dataclass
class HttpServer:
    """A real HTTP server on a free port of this machine; `routes` maps a path to
    (status, headers, body); every request is recorded."""

    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""


@contextlib.contextmanager
def http_server(tls: ssl.SSLContext | None = None) -> Iterator[HttpServer]:
    state = HttpServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append(Seen(self.path, self.headers.get("Authorization")))
            status, headers, body = state.routes.get(self.path, (404, {}, b"not here"))
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Published:
    pair: KeyPair
    key: Ed25519PrivateKey
    release: Release
    data: bytes
    device_id: str
    secret: str


@pytest.fixture
async def published(db: Database, unique: str, tmp_path: Path) -> Published:
    pair, key = fleet_key(tmp_path / "keys")
    built = build(version(unique, 1), tmp_path / "dist", key)
    release = await store.publish_release(db, built.archive, built.signature, pair.public_key, tmp_path / "store")
    device_id = f"{unique}-frog"
    return Published(pair, key, release, built.archive.read_bytes(), device_id, await register(db, device_id))


def updater(p: Published, root: Path, base_url: str, running: str = "0.1.0", ca_file: Path | None = None) -> Updater:
    return Updater(Layout(root), running, public_key=p.pair.public_key, base_url=base_url, allow_http=True,
                   ca_file=ca_file, credentials=lambda: Credentials(p.device_id, p.secret))


def outbox(layout: Layout) -> list[dict[str, object]]:
    return [json.loads(path.read_text())["update"] for path in layout.pending_reports()]


def refused_quietly(u: Updater, offer: UpdateOffer) -> None:
    """Refused before any request: nothing downloaded, reported or held against the version."""
    assert not u.prepare(offer)
    assert u.layout.failed() == {} and outbox(u.layout) == []
    assert not u.layout.downloads.exists() or list(u.layout.downloads.iterdir()) == []
    assert u.skip_reason(offer) == "refused already"  # and not looked at again while the agent runs


def test_versions_are_ordered_like_releases() -> None:
    ordered = ["0.1.0", "1.0.0", "1.4.0rc1", "1.4", "1.4.0+pi", "1.4.1.dev2", "1.4.1a1", "1.4.1b1", "1.4.1rc2",
               "1.4.1", "1.10.0", "2.4.0"]
    keys = [version_key(v) for v in ordered]
    assert all(k is not None for k in keys)
    assert keys == sorted(keys)  # type: ignore[type-var]
    assert version_key("1.4") == version_key("1.4.0")
    assert version_key("nightly") is None and version_key("t0abc.1") is None


def test_the_base_url_is_https_unless_the_config_marks_a_local_http_base() -> None:
    assert ReleaseBase.parse("https://api.cityops.example.org/").release_url("2.4.0") == \
        "https://api.cityops.example.org/releases/2.4.0/agent.tar.gz"
    assert ReleaseBase.parse("http://127.0.0.1:8000", allow_http=True).origin == ("http", "127.0.0.1", 8000)
    assert ReleaseBase.parse("https://h.example:443").origin == ReleaseBase.parse("https://H.example").origin
    for url, allow_http in (("http://127.0.0.1:8000", False), ("http://api.example.org", True),
                            ("http://10.0.0.5:8000", True), ("https://user:pw@api.example.org", False),
                            ("https://api.example.org/?x=1", False), ("ftp://api.example.org", False), (None, False)):
        with pytest.raises(UpdatesDisabled):
            ReleaseBase.parse(url, allow_http=allow_http)


async def test_malicious_offers_are_refused_and_the_attacker_never_sees_the_secret(
        db: Database, tmp_path: Path, published: Published) -> None:
    p = published
    _, other_key = fleet_key(tmp_path / "other")
    newer = version(p.device_id[:11], 9)  # what the device runs in the downgrade cases: newer than the release
    async with serving(api_settings(tmp_path / "store"), db) as base_url:
        with http_server() as attacker:
            attacker.routes[f"/releases/{p.release.version}/agent.tar.gz"] = (200, {}, p.data)
            genuine = signed_offer(p.key, p.release, rollout_id=7)
            as_config = msgspec.to_builtins(genuine)

            # the old offer format, naming the attacker's URL: not an offer any more
            old_format = {"version": p.release.version, "sha256": p.release.sha256, "size": p.release.size_bytes,
                          "signature": p.release.signature, "rollout_id": 7,
                          "url": f"{attacker.url}/releases/{p.release.version}/agent.tar.gz"}
            with pytest.raises(msgspec.ValidationError):
                offer_from_config(json.dumps({"v": 1, "update": old_format}).encode())

            # an older genuine release, an expired offer, one replayed from an earlier rollout
            refused_quietly(updater(p, tmp_path / "old", base_url, running=newer), genuine)
            refused_quietly(updater(p, tmp_path / "expired", base_url), signed_offer(p.key, p.release, 7, valid_s=-1))
            replay = updater(p, tmp_path / "replay", base_url)
            replay.layout.note_rollout(8)
            refused_quietly(replay, genuine)

            # any field changed after signing, or signed by another key
            tampered = [msgspec.structs.replace(genuine, version=version(p.device_id[:11], 2)),
                        msgspec.structs.replace(genuine, size=genuine.size + 1),
                        msgspec.structs.replace(genuine, rollout_id=8),
                        msgspec.structs.replace(genuine, expires_at=genuine.expires_at + timedelta(days=365)),
                        msgspec.structs.replace(genuine, min_version="0.0.1"),
                        sign_offer(other_key, p.release, 7, genuine.expires_at),
                        msgspec.structs.replace(genuine, offer_signature=base64.b64encode(b"x" * 64).decode())]
            for i, offer in enumerate(tampered):
                refused_quietly(updater(p, tmp_path / f"tampered-{i}", base_url), offer)
            assert updater(p, tmp_path / "x", base_url).skip_reason(genuine) is None  # a copy never blocks the real one

            # a signed offer with the attacker's URL slipped in: the URL is ignored, the real base serves it
            slipped = offer_from_config(json.dumps({"update": {**as_config, "url": old_format["url"]}}).encode())
            assert slipped == genuine
            taken = updater(p, tmp_path / "taken", base_url)
            assert await asyncio.to_thread(taken.prepare, slipped)
            assert taken.layout.installed(p.release.version) and taken.layout.last_rollout() == 7

            # a deliberate downgrade, signed with its minimum: taken over the newer version
            back = updater(p, tmp_path / "back", base_url, running=newer)
            assert await asyncio.to_thread(back.prepare, signed_offer(p.key, p.release, 9,
                                                                      min_version=p.release.version))
            assert back.layout.installed(p.release.version)
        assert attacker.seen == []  # not one request, so never the device's Authorization


async def test_a_redirect_to_another_origin_is_refused_before_the_secret_goes_there(
        tmp_path: Path, published: Published) -> None:
    p = published
    path = f"/releases/{p.release.version}/agent.tar.gz"
    with http_server() as base, http_server() as attacker:
        attacker.routes[path] = (200, {}, p.data)
        base.routes[path] = (302, {"Location": f"{attacker.url}{path}"}, b"")
        u = updater(p, tmp_path / "away", base.url)
        assert not await asyncio.to_thread(u.prepare, signed_offer(p.key, p.release))
        assert attacker.seen == []
        [failed] = [r for r in outbox(u.layout) if r["step"] == "failed"]
        assert "another origin: refused" in str(failed["reason"]) and u.layout.failed() == {}
        assert [s.path for s in base.seen] == [path] and base.seen[0].authorization is not None

        # within the base's own origin a redirect is followed, credentials and all
        base.routes[path] = (302, {"Location": "/mirror/agent.tar.gz"}, b"")
        base.routes["/mirror/agent.tar.gz"] = (200, {}, p.data)
        same = updater(p, tmp_path / "same", base.url)
        assert await asyncio.to_thread(same.prepare, signed_offer(p.key, p.release))
        assert [s.path for s in base.seen[1:]] == [path, "/mirror/agent.tar.gz"]
        assert all(s.authorization for s in base.seen) and attacker.seen == []


async def test_a_base_certified_by_the_councils_own_ca_is_trusted_only_through_the_configured_ca_file(
        tmp_path: Path, published: Published) -> None:
    """`cityops pki` makes the council's CA; a device that has not been given it refuses the
    base (nothing sent, not held against the version), and one with `ca_file` downloads."""
    p = published
    folder = tmp_path / "pki"
    assert pki(folder, "init") == 0 and pki(folder, "server", "api", "--ip", "127.0.0.1") == 0
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(folder / "api.pem", folder / "api.key")
    path = f"/releases/{p.release.version}/agent.tar.gz"
    with http_server(tls) as base:
        base.routes[path] = (200, {}, p.data)
        stranger = updater(p, tmp_path / "stranger", base.url)
        assert not await asyncio.to_thread(stranger.prepare, signed_offer(p.key, p.release))
        [failed] = [r for r in outbox(stranger.layout) if r["step"] == "failed"]
        assert "certificate not trusted" in str(failed["reason"]) and stranger.layout.failed() == {}
        assert base.seen == []
        trusting = updater(p, tmp_path / "trusting", base.url, ca_file=folder / "ca.pem")
        assert await asyncio.to_thread(trusting.prepare, signed_offer(p.key, p.release))
        assert [s.path for s in base.seen] == [path] and base.seen[0].authorization is not None


def declined(log: Path) -> int:
    text = log.read_text()
    return text.count("update offer refused") + text.count("ignoring a malformed update offer")


@pytest.mark.timeout(300)  # installs a release: minutes on a loaded machine
async def test_the_agent_refuses_forged_offers_on_the_config_topic_and_takes_the_genuine_one(
        mosquitto: BrokerInstance, db: Database, unique: str, tmp_path: Path, published: Published) -> None:
    """What anyone who can write the config topic can try, against a launched device."""
    p = published
    old_build = build(f"0.0.{int(unique[1:], 16)}", tmp_path / "old", p.key)  # older than the factory 0.1.0
    old = await store.publish_release(db, old_build.archive, old_build.signature, p.pair.public_key,
                                      tmp_path / "store")
    genuine = signed_offer(p.key, p.release, rollout_id=5)
    attacks = {
        "old format naming the attacker": None,
        "an older release": signed_offer(p.key, old, rollout_id=6),
        "expired": signed_offer(p.key, p.release, rollout_id=6, valid_s=-60),
        "tampered": msgspec.structs.replace(genuine, rollout_id=99),
    }
    async with serving(api_settings(tmp_path / "store"), db) as base_url, \
            collecting(mosquitto.port, unique) as collector, service.publisher(mosquitto.url) as publish:
        with http_server() as attacker:
            device = make_device(tmp_path / "device", p.device_id, p.secret, mosquitto.port, p.pair.public_key,
                                 base_url)
            topic = f"cityops/v1/devices/{p.device_id}/config"
            async with launched(device):
                await collector.wait_for(lambda: len(collector.readings(p.device_id)) >= 1)
                for count, (name, offer) in enumerate(attacks.items(), start=1):
                    if offer is None:
                        payload = json.dumps({"v": 1, "update": {
                            "version": p.release.version, "sha256": p.release.sha256, "size": p.release.size_bytes,
                            "signature": p.release.signature,
                            "url": f"{attacker.url}/releases/{p.release.version}/agent.tar.gz"}}).encode()
                        marker = "ignoring a malformed update offer"
                    else:
                        payload, marker = service.config_payload({"v": 1}, offer), "update offer refused"
                    await publish(topic, payload)
                    await wait_until(lambda n=count: declined(device.log) >= n, what=name)  # type: ignore[misc]
                    assert marker in device.log.read_text(), name
                await publish(topic, service.config_payload({"v": 1}, genuine))
                await collector.wait_for(lambda: "healthy" in steps(collector, p.device_id, p.release.version), 120)
        assert attacker.seen == []
    log = device.log.read_text()
    assert "bad offer signature" in log and "expired at" in log and f"{old.version} is not newer" in log
    assert steps(collector, p.device_id, old.version) == []  # refusals are not reported: no rollout paused by them
    assert steps(collector, p.device_id, p.release.version) == ["downloading", "verified", "installed", "healthy"]
    assert device.layout.failed() == {} and device.layout.last_rollout() == 5


async def test_a_rollout_signs_its_offer_and_pauses_once_it_expires(
        mosquitto: BrokerInstance, db: Database, unique: str, tmp_path: Path, published: Published) -> None:
    p = published
    now = datetime.now(UTC)
    with pytest.raises(RolloutError, match="must be a version at most"):
        check_terms("1.2.0", now + timedelta(days=1), "1.3.0", now)
    with pytest.raises(RolloutError, match="not in the future"):
        check_terms("1.2.0", now, None, now)
    await db.execute("UPDATE release_rollouts SET state = 'cancelled' WHERE state IN ('active', 'paused')")
    rollout = await store.create_rollout(db, p.release.version, store.Cohort(devices=(p.device_id,)),
                                         store.Policy((100,), 0, 1), key=p.key, expires_at=now + timedelta(hours=1))
    try:
        async with service.publisher(mosquitto.url) as publish:
            assert (await service.tick(db, publish)).offered == [p.device_id]
            await db.execute("UPDATE release_rollouts SET expires_at = now() - interval '1 s' WHERE rollout_id = $1",
                             rollout.rollout_id)
            result = await service.tick(db, publish)
        assert result.state == "paused" and result.offered == []
        assert "expired" in ((await store.get_rollout(db, rollout.rollout_id)).reason or "")
    finally:
        await db.execute("UPDATE release_rollouts SET state = 'cancelled' WHERE rollout_id = $1", rollout.rollout_id)


# --- download slots ----------------------------------------------------------------------------

async def big_release(db: Database, unique: str, tmp_path: Path, p: Published) -> Release:
    """A release of ~6 MB that does not compress, so a client that reads nothing stalls the server."""
    filler = base64.b64encode(os.urandom(6_000_000)).decode()
    source = agent_source_copy(tmp_path / "big-src")
    (source / "firmware" / "filler.py").write_text(f'BLOB = "{filler}"\n')
    built = build(version(unique, 3), tmp_path / "big", p.key, source=source)
    return await store.publish_release(db, built.archive, built.signature, p.pair.public_key, tmp_path / "store")


def stalled_download(port: int, path: str, device_id: str, secret: str) -> socket.socket:
    """Start a download and read nothing (a tiny receive buffer, so the server's writes block)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    auth = base64.b64encode(f"{device_id}:{secret}".encode()).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\r\n".encode())
    return sock


async def test_one_device_holds_one_download_slot_and_loses_it_when_it_takes_no_bytes(
        db: Database, unique: str, tmp_path: Path, published: Published, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ops_api.releases")
    p = published
    big = await big_release(db, unique, tmp_path, p)
    other_id = f"{unique}-other"
    other_secret = await register(db, other_id)
    settings = api_settings(tmp_path / "store", max_concurrent_downloads=2, download_bytes_per_s=500_000_000,
                            download_burst_bytes=1_000_000, download_idle_timeout_s=1.0)
    path = f"/releases/{big.version}/agent.tar.gz"
    async with serving(settings, db) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        port = int(base.rsplit(":", 1)[1])
        stalled = await asyncio.to_thread(stalled_download, port, path, p.device_id, p.secret)
        try:
            async def mine() -> int:
                return (await http.get(path, auth=(p.device_id, p.secret), headers={"Range": "bytes=-10"})).status_code

            # its first download holds its slot: a second from the same device is refused, another device's goes
            await wait_until_async(lambda: mine(), lambda code: code == 429, what="the stalled download's slot")
            second = await http.get(path, auth=(p.device_id, p.secret))
            assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
            theirs = await http.get(path, auth=(other_id, other_secret))
            assert theirs.status_code == 200 and len(theirs.content) == big.size_bytes
            # it takes no bytes: after the idle timeout the server drops it and the slot is free again
            started = asyncio.get_running_loop().time()
            code = await wait_until_async(mine, lambda code: code == 206, what="the slot to come back", timeout_s=15)
            assert code == 206 and asyncio.get_running_loop().time() - started >= 0.5
            assert f"release download by {p.device_id}: no bytes taken for 1 s; dropped" in caplog.text
        finally:
            stalled.close()


async def wait_until_async(probe: object, done: object, what: str, timeout_s: float = 10.0) -> int:
    """Call `probe` until `done(result)`; the result."""
    assert callable(probe) and callable(done)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await probe()
        if done(result):
            return int(result)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last {result})")
        await asyncio.sleep(0.05)


def test_the_limiter_counts_one_slot_per_device_and_takes_back_idle_ones() -> None:
    now = [0.0]
    limits = DownloadLimits(TokenBucket(1000, 100, clock=lambda: now[0]), max_concurrent=2, idle_timeout_s=60,
                            clock=lambda: now[0])
    a = limits.try_acquire("a")
    assert a is not None and limits.try_acquire("a") is None  # one per device
    b = limits.try_acquire("b")
    assert b is not None and limits.try_acquire("c") is None and limits.active == 2
    now[0] = 50.0
    limits.progress(b)
    now[0] = 61.0  # a took nothing for 61 s, b for 11 s
    c = limits.try_acquire("c")
    assert c is not None and a.revoked and not b.revoked and limits.active == 2
    limits.release(a)  # the revoked stream ending later frees nothing of anyone else's
    assert limits.active == 2
    limits.release(c)
    assert limits.try_acquire("a") is not None
