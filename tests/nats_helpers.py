"""A 3-node NATS JetStream cluster of real `nats-server` processes, for tests (issue 26).

`nats_cluster(folder, devices=..., services=...)` writes each node's config with the
platform's own generators (cityops/nats_cluster/config.py for the nodes, devices/nats_auth.py
for the users, bcrypt hashes made here from secrets the test chose), starts the three nodes on
free loopback ports, and yields once JetStream has a meta leader, the telemetry stream and
ingest's consumer exist with all three copies current, and an MQTT client is served on every
node (the first MQTT connection of an account makes NATS's `$MQTT_*` streams, with 3 replicas:
config.node_config) and its session record is gone again. Each node can be killed
with SIGKILL and started again on the same ports and store; `stream_leader()` and
`consumer_leader()` say which node to kill. URLs for every node's client and MQTT port are
there for the agent's broker list and the ingest consumer (their own tests).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from paho.mqtt.enums import CallbackAPIVersion

from cityops.embedded.process import free_port, spawn, wait_for_port
from cityops.nats_cluster import jetstream
from cityops.nats_cluster.config import CONSUMER, STREAM, Cluster, Node, node_config
from devices.dynsec import ADMIN, SERVICE_CLIENTS
from devices.nats_auth import INGEST, render_users, users
from devices.registry import SERVICE_ACCOUNTS
from devices.secrets import bcrypt_secret, new_secret
from tests.conftest import skip_or_fail

NATS_SERVER = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists()
                                              else None)
HOST = "127.0.0.1"
MQTT_SESSIONS = "$MQTT_sess"  # NATS's own stream of MQTT session records


def nats_server() -> str:
    if NATS_SERVER is None:
        skip_or_fail("no `nats-server` binary (apt-get install nats-server; scripts/system-deps.sh does it)")
    assert NATS_SERVER is not None
    return NATS_SERVER


@dataclass
class NatsCluster:
    folder: Path
    cluster: Cluster
    secrets: dict[str, str]                     # username -> secret (devices, services, service.admin)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.cluster.nodes]

    def client_url(self, name: str) -> str:
        return f"nats://{HOST}:{self.cluster.node(name).client_port}"

    def client_urls(self) -> list[str]:
        return [self.client_url(n) for n in self.names]

    def mqtt_port(self, name: str) -> int:
        return self.cluster.node(name).mqtt_port

    def mqtt_urls(self) -> list[str]:
        return [f"mqtt://{HOST}:{n.mqtt_port}" for n in self.cluster.nodes]

    def log_path(self, name: str) -> Path:
        return self.folder / name / "nats.log"

    def log(self, name: str) -> str:
        return self.log_path(name).read_text(errors="replace")

    async def start_node(self, name: str) -> None:
        """Start (or start again, after a kill) one node on its ports and store."""
        config = self.folder / name / "nats.conf"
        proc = spawn([nats_server(), "-c", str(config)], log_path=self.log_path(name), death_signal=signal.SIGKILL)
        self.procs[name] = proc
        node = self.cluster.node(name)
        for port in (node.client_port, node.mqtt_port):
            await wait_for_port(proc, port, name=f"nats-server {name}", log_path=self.log_path(name))

    def kill(self, name: str) -> None:
        """SIGKILL: what an OOM kill or a power cut does to a node."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def running(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is None]

    @asynccontextmanager
    async def admin(self, *names: str) -> AsyncIterator[JetStreamContext]:
        """service.admin on the given nodes (default: every node), JetStream ready."""
        nc: NATS = await jetstream.connect([self.client_url(n) for n in (names or self.running())], ADMIN,
                                           self.secrets[ADMIN], name="test-admin")
        try:
            yield nc.jetstream(timeout=5)
        finally:
            await nc.close()

    async def stream_leader(self) -> str:
        async with self.admin() as js:
            return await _until(lambda: jetstream.stream_leader(js, STREAM), "a stream leader")

    async def consumer_leader(self) -> str:
        async with self.admin() as js:
            return await _until(lambda: jetstream.consumer_leader(js, STREAM, CONSUMER), "a consumer leader")

    async def stored(self, subject_filter: str = ">") -> dict[str, int]:
        """Messages in the telemetry stream per subject."""
        async with self.admin() as js:
            info = await js.stream_info(STREAM, subjects_filter=subject_filter)
            return dict(info.state.subjects or {})

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        async with asyncio.timeout(timeout_s), self.admin() as js:
            await jetstream.ensure_stream_when_ready(js, timeout_s=timeout_s)
            while await jetstream.replicas_current(js, STREAM) < len(self.cluster.nodes):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        # the API's account (MQTT only, no subject) as the probe: its CONNACK means MQTT is served.
        # One client id per node: the same id moved to the next node before the last node has
        # deleted its session record is refused there (mqtt_sessions, below)
        for name in self.running():
            code = await asyncio.to_thread(mqtt_connack, self.mqtt_port(name), "service.api",
                                           self.secrets["service.api"], f"cityops-api-{name}")
            assert code == 0, f"node {name}'s MQTT listener refused the API's probe: {code}"
        await self.wait_mqtt_sessions(0, timeout_s=timeout_s)

    async def mqtt_sessions(self) -> int:
        """MQTT session records in NATS's `$MQTT_sess` stream: one per connected client id (a clean
        session's too), deleted by its node when the client disconnects."""
        async with self.admin() as js:
            return (await js.stream_info(MQTT_SESSIONS)).state.messages

    async def wait_mqtt_sessions(self, count: int, timeout_s: float = 15.0) -> None:
        """Until `count` session records are left. nats-server 2.9.10 refuses a CONNECT (closes the
        connection, no CONNACK; its log: `unable to delete session "ID" record at sequence N`)
        when the same client id arrives on another node before the node it left has deleted its
        clean session's record: both delete it, and the loser gives up. A device's reconnect
        succeeds; a test that moves a client id between nodes waits for this state first."""
        try:
            async with asyncio.timeout(timeout_s):
                while await self.mqtt_sessions() != count:  # noqa: ASYNC110 (the cluster's state)
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"not within {timeout_s:.0f} s: {count} MQTT session records, "
                                 f"{await self.mqtt_sessions()} left") from None

    async def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)


async def _until(probe: Callable[[], Awaitable[str | None]], what: str, timeout_s: float = 30.0) -> str:
    """The probe's first answer, asked again while a node is down or an election runs."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                try:
                    value = await probe()
                except Exception:  # a node just died: ask again
                    value = None
                if value:
                    return value
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {timeout_s:.0f} s: {what}") from None


def _free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port(HOST))
    return sorted(ports)


def test_accounts(device_ids: list[str]) -> dict[str, str]:
    """A secret for each device, each service account's usernames and service.admin."""
    out = {d: new_secret() for d in device_ids}
    for name in SERVICE_ACCOUNTS:
        out[f"service:{name}"] = new_secret()
    out[ADMIN] = new_secret()
    return out


@asynccontextmanager
async def nats_cluster(folder: Path, device_ids: list[str], *, monitor: bool = False) -> AsyncIterator[NatsCluster]:
    """Three nodes with the generated configs and users, ready (above); stopped on exit."""
    nats_server()
    ports = _free_ports(12)
    nodes = tuple(Node(f"n{i + 1}", HOST, client_port=ports[4 * i], cluster_port=ports[4 * i + 1],
                       mqtt_port=ports[4 * i + 2], monitor_port=ports[4 * i + 3] if monitor else None)
                  for i in range(3))
    cluster = Cluster(nodes)
    plain = test_accounts(device_ids)
    service_secrets = {name: plain.pop(f"service:{name}") for name in SERVICE_ACCOUNTS}
    accounts = users({d: bcrypt_secret(plain[d]) for d in device_ids},
                     {n: bcrypt_secret(s) for n, s in service_secrets.items()}, admin_hash=bcrypt_secret(plain[ADMIN]))
    known = dict(plain)
    known[INGEST] = service_secrets["ingest"]
    for name, pairs in SERVICE_CLIENTS.items():
        for username, _ in pairs:
            known[username] = service_secrets[name]
    for node in nodes:
        (folder / node.name).mkdir(parents=True, exist_ok=True)
        (folder / node.name / "users.conf").write_text(render_users(accounts))
        (folder / node.name / "nats.conf").write_text(
            node_config(cluster, node.name, store_dir=folder / node.name / "jetstream", listen_host=HOST))
    running = NatsCluster(folder, cluster, known)
    try:
        await asyncio.gather(*(running.start_node(n.name) for n in nodes))
        await running.wait_ready()
        yield running
    finally:
        await running.stop()


def mqtt_connack(port: int, username: str, password: str, client_id: str) -> int:
    """One MQTT 3.1.1 connection attempt: the CONNACK code (0 accepted), then closed."""
    client = MqttClient(port, username, password, client_id)
    try:
        return client.connect()
    finally:
        client.close()


class MqttClient:
    """A blocking MQTT 3.1.1 client, like the agent's 3.1.1 mode: what the broker answered is kept."""

    def __init__(self, port: int, username: str, password: str, client_id: str, *, clean_session: bool = True):
        self.port = port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                                  clean_session=clean_session)
        self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(100)
        self.connack: int | None = None
        self.connected, self.disconnected = threading.Event(), threading.Event()
        self._suback = threading.Event()
        self._granted: list[int] = []
        self._pubacks: set[int] = set()
        self._lock = threading.Lock()
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = lambda _c, _u, mid, _rc, _p: self._pubacks.add(mid)
        self.client.on_message = self._on_message

    def _on_connect(self, _c: object, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        self.connack = reason.value
        self.connected.set()

    def _on_subscribe(self, _c: object, _u: object, _m: int, codes: list[mqtt.ReasonCode], _p: object) -> None:
        self._granted = [c.value for c in codes]
        self._suback.set()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def connect(self) -> int:
        self.client.reconnect_delay_set(60, 120)  # a kicked client stays off: the test decides
        try:
            self.client.connect(HOST, self.port)
        except OSError:
            return -1
        self.client.loop_start()
        if not self.connected.wait(20):
            return -1
        assert self.connack is not None
        return self.connack

    def subscribe(self, topic: str, qos: int = 1) -> int:
        self._suback.clear()
        self.client.subscribe(topic, qos=qos)
        assert self._suback.wait(10), "no SUBACK"
        return self._granted[0]

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """True when the broker acknowledged (QoS 1): in 3.1.1 a PUBACK says nothing of rights."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0:
            return True
        try:
            info.wait_for_publish(10)
        except (RuntimeError, ValueError):
            return False
        return info.mid in self._pubacks

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def random_password() -> str:
    return secrets.token_urlsafe(32)


def service_secrets(cluster: NatsCluster) -> Mapping[str, str]:
    return {u: s for u, s in cluster.secrets.items() if u.startswith("service.")}
