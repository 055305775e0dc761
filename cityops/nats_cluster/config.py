"""The NATS cluster's shape, pure: subjects, the telemetry stream, ingest's consumer, node configs.

Why a cluster (docs/nats.md): one Mosquitto is one machine; a council that cannot lose its
broker on an ice night runs three NATS nodes, each with an MQTT listener for the devices, and
a JetStream stream that keeps every telemetry message on all three (file storage, 3 replicas),
so losing any one node loses nothing the stream acknowledged. Ingest reads the stream through
one durable pull consumer that every ingest process shares, acknowledging after its commit.

NATS's MQTT maps a topic to a subject by `/` -> `.`: `cityops/v1/devices/<id>/telemetry` is
`cityops.v1.devices.<id>.telemetry` (device ids hold no `.`, `*` or `>`: the id rule).

What NATS 2.9 (Debian 12's 2.9.10) needs for MQTT: a `server_name` per node and JetStream
(sessions, retained messages and QoS 1 deliveries live in its `$MQTT_*` streams); it speaks
MQTT 3.1.1 only, QoS 0 and 1. Nothing here starts a process or opens a socket.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from contract.errors import ConfigError
from contract.telemetry import TOPIC_ROOT

SUBJECT_ROOT = TOPIC_ROOT.replace("/", ".")  # cityops.v1.devices
STREAM = "CITYOPS_TELEMETRY"
CONSUMER = "ingest"                            # the durable pull consumer every ingest process shares
INGEST_INBOX = "_INBOX_ingest"                 # ingest's reply subjects: no other user may subscribe there
CLUSTER_NAME = "cityops"
CLIENT_PORT, CLUSTER_PORT, MQTT_PORT, MQTT_TLS_PORT = 4222, 6222, 1883, 8883
MAX_PAYLOAD = 262_144                          # as Mosquitto's max_packet_size (docs/devices.md, Limits)
MQTT_STREAM_REPLICAS = 3                       # NATS's own $MQTT_* streams: on every node (node_config)
WEEK_S = 7 * 24 * 3600


def subject(device_id: str, channel: str) -> str:
    """The NATS subject of a device's topic: subject("frog-1", "telemetry") -> cityops.v1.devices.frog-1.telemetry."""
    return f"{SUBJECT_ROOT}.{device_id}.{channel}"


def every(channel: str) -> str:
    """Every device's `channel`: cityops.v1.devices.*.<channel>."""
    return f"{SUBJECT_ROOT}.*.{channel}"


def topic_to_subject(topic: str) -> str:
    """An MQTT topic as NATS's MQTT listener maps it (`/` -> `.`)."""
    return topic.replace("/", ".")


@dataclass(frozen=True)
class StreamSpec:
    """The telemetry stream: every device's telemetry, on every node's disk.

    Limits retention (not a work queue): what ingest has acknowledged stays for `max_age_s`, so
    after a database restore the readings since the backup can be replayed from the stream
    (a new consumer from a start time); `max_bytes` bounds the disk, dropping the oldest."""

    name: str = STREAM
    subjects: tuple[str, ...] = (every("telemetry"),)
    replicas: int = 3
    max_age_s: float = WEEK_S
    max_bytes: int = -1
    max_msg_size: int = MAX_PAYLOAD


@dataclass(frozen=True)
class ConsumerSpec:
    """Ingest's durable pull consumer: explicit acks, sent after the commit.

    A message not acknowledged within `ack_wait_s` (ingest died between its commit and its ack,
    or before the commit) is delivered again; the idempotent writer drops the duplicate."""

    stream: str = STREAM
    durable: str = CONSUMER
    filter_subject: str = every("telemetry")
    ack_wait_s: float = 30.0
    max_ack_pending: int = 20_000


@dataclass(frozen=True)
class TlsFiles:
    """PEM files from `cityops pki` (docs/operations.md, "TLS")."""

    cert_file: Path
    key_file: Path
    ca_file: Path


@dataclass(frozen=True)
class Node:
    """One server: its name, the address the others reach its route port on, and its ports."""

    name: str
    host: str
    client_port: int = CLIENT_PORT
    cluster_port: int = CLUSTER_PORT
    mqtt_port: int = MQTT_PORT
    monitor_port: int | None = None  # the HTTP monitoring endpoint (/healthz, /jsz); None: off


@dataclass(frozen=True)
class Cluster:
    nodes: tuple[Node, ...]
    name: str = CLUSTER_NAME

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ConfigError(f"NATS node names must differ: {names}")
        if len(self.nodes) < 3:
            raise ConfigError(f"a NATS cluster that survives losing a node needs 3 nodes, not {len(self.nodes)}",
                              hint="JetStream needs a majority of its nodes: 3 survive one loss, 2 survive none")

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ConfigError(f"no NATS node {name!r} in {[n.name for n in self.nodes]}")

    def routes(self, name: str, *, scheme_user: str = "") -> list[str]:
        """The other nodes' route URLs (`nats-route://[user:password@]host:port`)."""
        return [f"nats-route://{scheme_user}{n.host}:{n.cluster_port}" for n in self.nodes if n.name != name]


def _q(value: str | Path) -> str:
    """A quoted string in NATS's config syntax (JSON's escaping; `$` inside quotes is literal)."""
    return json.dumps(str(value))


def _tls_block(tls: TlsFiles, indent: str, *, verify: bool = False) -> list[str]:
    lines = [f"{indent}tls {{", f"{indent}  cert_file: {_q(tls.cert_file)}", f"{indent}  key_file: {_q(tls.key_file)}",
             f"{indent}  ca_file: {_q(tls.ca_file)}", f"{indent}  timeout: 5"]
    if verify:
        lines.append(f"{indent}  verify: true")
    return [*lines, f"{indent}}}"]


@dataclass(frozen=True)
class RouteAuth:
    """The routes' own account: a user and a password every node presents to the others (in
    clear in the route URLs, so the node config is 0600) and checks as a bcrypt hash."""

    user: str
    password: str
    bcrypt_hash: str


def node_config(cluster: Cluster, name: str, *, store_dir: Path, users_file: str | Path = "users.conf",
                listen_host: str = "0.0.0.0", tls: TlsFiles | None = None, route_auth: RouteAuth | None = None,
                max_file_store: str | None = None) -> str:
    """One node's `nats-server -c` file: client, cluster (routes to the others) and MQTT listeners,
    JetStream in `store_dir`, and `include` of the users file (`devices/nats_auth.py` writes it;
    relative paths are read from the config file's folder; `nats-server --signal reload` re-reads it).

    The MQTT listener's own streams (`$MQTT_sess` sessions, `$MQTT_msgs` where every QoS 1
    PUBLISH is stored before its PUBACK, `$MQTT_rmsgs` retained messages) get `stream_replicas: 3`: left to itself,
    2.9.10 made them with 2 replicas in a 3-node cluster ("Creating MQTT streams/consumers with
    replicas 2"), so SIGKILLing one of those two nodes left them without a quorum and the other
    nodes' MQTT stopped: no PUBACK ("timeout for request type MS"), no CONNACK ("unable to
    delete session ... record"), tests/test_nats_cluster.py's leader kill. They are made on an
    account's first MQTT connection, so all three nodes must be up then.

    With `tls` every listener takes TLS only: clients and MQTT with the node's certificate, the
    routes mutually (NATS requires each node's certificate to be valid for client and server use
    on routes: `cityops pki server NAME --peer`)."""
    node = cluster.node(name)
    lines = [
        f"# NATS node {node.name} of cluster {cluster.name}: generated (cityops nats node-config), do not edit",
        f"server_name: {_q(node.name)}",
        f"listen: {_q(f'{listen_host}:{node.client_port}')}",
        f"max_payload: {MAX_PAYLOAD}",
        "ping_interval: \"20s\"",
    ]
    if node.monitor_port is not None:
        lines.append(f"http: {_q(f'{listen_host}:{node.monitor_port}')}")
    if tls is not None:
        lines += _tls_block(tls, "")
    lines += ["", "jetstream {", f"  store_dir: {_q(store_dir)}"]
    if max_file_store is not None:
        lines.append(f"  max_file_store: {_q(max_file_store)}")
    lines += ["}", "", "cluster {", f"  name: {_q(cluster.name)}",
              f"  listen: {_q(f'{listen_host}:{node.cluster_port}')}"]
    user = ""
    if route_auth is not None:
        lines += ["  authorization {", f"    user: {_q(route_auth.user)}",
                  f"    password: {_q(route_auth.bcrypt_hash)}", "    timeout: 5", "  }"]
        user = f"{route_auth.user}:{route_auth.password}@"
    if tls is not None:
        lines += _tls_block(tls, "  ")
    lines.append("  routes: [")
    lines += [f"    {_q(url)}" for url in cluster.routes(name, scheme_user=user)]
    lines += ["  ]", "}", "", "mqtt {", f"  listen: {_q(f'{listen_host}:{node.mqtt_port}')}",
              "  ack_wait: \"30s\"", "  max_ack_pending: 100", f"  stream_replicas: {MQTT_STREAM_REPLICAS}"]
    if tls is not None:
        lines += _tls_block(tls, "  ")
    lines += ["}", "", f"include {_q(users_file)}", ""]
    return "\n".join(lines)


def client_urls(cluster: Cluster, *, tls: bool = False, hosts: Sequence[str] | None = None) -> list[str]:
    """Every node's client URL, for a service's list (nats-py moves to the next when one fails)."""
    scheme = "tls" if tls else "nats"
    return [f"{scheme}://{host}:{n.client_port}" for n, host in zip(cluster.nodes, hosts or [n.host for n in
                                                                                             cluster.nodes],
                                                                     strict=True)]
