"""A 3-node NATS JetStream cluster for a benchmark run (not production: tests/nats_helpers.py
has the tests' own, with device users and node kills).

The nodes' configs come from the platform's generators (cityops/nats_cluster/config.py, users
from devices/nats_auth.py), on free loopback ports, JetStream in the run's scratch folder. The
users: ingest and the admin as in production, and one benchmark publisher allowed to publish
every device's telemetry over MQTT (the benchmark's simulated devices share its connections,
as they share one connection on Mosquitto). Yields once JetStream has a meta leader, the stream
and ingest's consumer exist with three current copies, and each node serves MQTT.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityops.embedded.process import free_port, spawn, stop_process, wait_for_port
from cityops.errors import ConfigError
from cityops.nats_cluster import jetstream
from cityops.nats_cluster.config import STREAM, Cluster, Node, every, node_config
from devices.dynsec import ADMIN
from devices.nats_auth import Permissions, User, render_users, users
from devices.secrets import bcrypt_secret

HOST = "127.0.0.1"
PUBLISHER = "bench.publisher"


def nats_server() -> str:
    found = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists()
                                            else None)
    if found is None:
        raise ConfigError("the NATS benchmark needs a `nats-server` binary", hint="apt-get install nats-server")
    return found


@dataclass
class BenchCluster:
    client_urls: list[str]
    mqtt_urls: list[str]
    ingest_password: str
    admin_password: str
    publisher_password: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _mqtt_connack(port: int, password: str) -> bool:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{port}", protocol=mqtt.MQTTv311)
    client.username_pw_set(PUBLISHER, password)
    try:
        return client.connect(HOST, port) == 0 and _loop_until_connected(client)
    except OSError:
        return False
    finally:
        client.disconnect()


def _loop_until_connected(client: mqtt.Client, attempts: int = 200) -> bool:
    for _ in range(attempts):
        client.loop(0.1)
        if client.is_connected():
            return True
    return False


@asynccontextmanager
async def bench_cluster(folder: Path) -> AsyncIterator[BenchCluster]:
    binary = nats_server()
    ports: set[int] = set()
    while len(ports) < 9:
        ports.add(free_port(HOST))
    p = sorted(ports)
    nodes = tuple(Node(f"n{i + 1}", HOST, client_port=p[3 * i], cluster_port=p[3 * i + 1], mqtt_port=p[3 * i + 2])
                  for i in range(3))
    cluster = Cluster(nodes)
    ingest, admin, publisher = (secrets.token_urlsafe(24) for _ in range(3))
    accounts = users({}, {"ingest": bcrypt_secret(ingest)}, admin_hash=bcrypt_secret(admin))
    accounts.users.append(User(PUBLISHER, bcrypt_secret(publisher), Permissions(publish=(every("telemetry"),)),
                               ("MQTT",)))
    running = BenchCluster([f"nats://{HOST}:{n.client_port}" for n in nodes],
                           [f"mqtt://{HOST}:{n.mqtt_port}" for n in nodes], ingest, admin, publisher)
    try:
        for node in nodes:
            home = folder / node.name
            home.mkdir(parents=True, exist_ok=True)
            (home / "users.conf").write_text(render_users(accounts))
            config = node_config(cluster, node.name, store_dir=home / "jetstream", listen_host=HOST)
            if "stream_replicas" not in config:  # NATS's own MQTT streams on all three (tests/test_nats_ingest.py)
                config = config.replace("\nmqtt {\n", "\nmqtt {\n  stream_replicas: 3\n", 1)
            (home / "nats.conf").write_text(config)
            running.procs.append(spawn([binary, "-c", str(home / "nats.conf")], log_path=home / "nats.log",
                                       death_signal=signal.SIGKILL))
        for node, proc in zip(nodes, running.procs, strict=True):
            for port in (node.client_port, node.mqtt_port):
                await wait_for_port(proc, port, name=f"nats-server {node.name}",
                                    log_path=folder / node.name / "nats.log")
        nc = await jetstream.connect(running.client_urls, ADMIN, admin, name="bench-admin")
        try:
            js = nc.jetstream(timeout=5)
            await jetstream.ensure_stream_when_ready(js, timeout_s=60)
            async with asyncio.timeout(60):
                while await jetstream.replicas_current(js, STREAM) < 3:  # noqa: ASYNC110 (the cluster's state)
                    await asyncio.sleep(0.1)
        finally:
            await nc.close()
        for node in nodes:  # the first MQTT connection makes NATS's $MQTT_* streams
            if not await asyncio.to_thread(_mqtt_connack, node.mqtt_port, publisher):
                raise ConfigError(f"NATS node {node.name} does not serve MQTT (see {folder / node.name / 'nats.log'})")
        yield running
    finally:
        for proc in running.procs:
            await stop_process(proc)
