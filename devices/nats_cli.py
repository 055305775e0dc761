"""`cityops nats node-config | users | stream`: the NATS JetStream cluster's files and stream (docs/nats.md).

    node-config   one node's nats-server config (cityops/nats_cluster/config.py), written once per node
    users         the users file every node includes, from the registry (devices/nats_auth.py);
                  --pid-file / --pid sends SIGHUP so a running node re-reads it
    stream        the telemetry stream and ingest's durable consumer, made or updated (idempotent)

Secrets come from files (`--admin-password-file`, `--route-password-file`), never the command
line, which other accounts can read in the process list.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cityops.nats_cluster import jetstream
from cityops.nats_cluster.config import Cluster, Node, RouteAuth, StreamSpec, TlsFiles, node_config
from cityops.services import database_for
from cityops.settings import Settings
from contract.errors import ConfigError
from devices.broker_auth import write_replacing
from devices.dynsec import ADMIN
from devices.nats_sync import write_users_file
from devices.secrets import bcrypt_secret


def register(commands: argparse._SubParsersAction[Any]) -> None:
    nats = commands.add_parser("nats", help="the NATS JetStream cluster: node configs, users, the telemetry stream",
                               description="A 3-node NATS JetStream cluster beside Mosquitto (docs/nats.md).")
    actions = nats.add_subparsers(dest="nats_command", metavar="ACTION", required=True)

    node = actions.add_parser("node-config", help="one node's nats-server config")
    node.add_argument("--node", required=True, help="this node's name, one of --peers")
    node.add_argument("--peers", required=True,
                      help="every node as NAME=HOST[:CLUSTER_PORT], comma separated, e.g. nats-1=nats-1,...")
    node.add_argument("--store-dir", type=Path, required=True, help="JetStream's folder on this node")
    node.add_argument("--users-file", default="users.conf", help="the users file to include (cityops nats users)")
    node.add_argument("--listen-host", default="0.0.0.0")
    node.add_argument("--client-port", type=int, default=4222)
    node.add_argument("--mqtt-port", type=int, default=None, help="default 8883 with TLS, else 1883")
    node.add_argument("--monitor-port", type=int, default=None, help="HTTP monitoring (/healthz); default off")
    node.add_argument("--certfile", type=Path, help="this node's certificate (cityops pki server NAME --dns ...)")
    node.add_argument("--keyfile", type=Path)
    node.add_argument("--cafile", type=Path)
    node.add_argument("--route-password-file", type=Path, help="a secret shared by the nodes' routes")
    node.add_argument("--max-file-store", help="JetStream's disk limit, e.g. 50G")
    node.add_argument("--out", type=Path, required=True)
    node.set_defaults(handler=run_node_config)

    users = actions.add_parser("users", help="the users file every node includes, from the registry")
    users.add_argument("--out", type=Path, required=True)
    users.add_argument("--admin-password-file", type=Path, help="service.admin's secret (makes the stream)")
    users.add_argument("--pid", type=int, action="append", default=[], help="a running node to SIGHUP; repeat")
    users.add_argument("--pid-file", type=Path, action="append", default=[], help="a node's pid file; repeat")
    users.add_argument("--json", action="store_true")
    users.set_defaults(handler=run_users)

    stream = actions.add_parser("stream", help="make or update the telemetry stream and ingest's consumer")
    stream.add_argument("--url", action="append", required=True, help="a node's client URL (tls://...); repeat")
    stream.add_argument("--admin-password-file", type=Path, required=True)
    stream.add_argument("--cafile", help="the CA of the nodes' certificates")
    stream.add_argument("--replicas", type=int, default=3)
    stream.add_argument("--max-age-days", type=float, default=7.0, help="how long acknowledged readings stay")
    stream.add_argument("--max-bytes", type=int, default=-1)
    stream.set_defaults(handler=run_stream)


def _secret(path: Path) -> str:
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if len(secret) < 16:
        raise ConfigError(f"{path}: the secret is shorter than 16 characters")
    return secret


def _peers(text: str) -> list[Node]:
    nodes = []
    for item in text.split(","):
        name, _, where = item.strip().partition("=")
        host, _, port = where.partition(":")
        if not name or not host:
            raise ConfigError(f"--peers: {item!r} is not NAME=HOST[:PORT]")
        nodes.append(Node(name, host, cluster_port=int(port) if port else 6222))
    return nodes


async def run_node_config(args: argparse.Namespace, settings: Settings) -> int:
    tls_parts = (args.certfile, args.keyfile, args.cafile)
    if any(tls_parts) and not all(tls_parts):
        raise ConfigError("--certfile, --keyfile and --cafile go together")
    tls = TlsFiles(args.certfile, args.keyfile, args.cafile) if all(tls_parts) else None
    mqtt_port = args.mqtt_port or (8883 if tls else 1883)
    nodes = tuple(Node(n.name, n.host, args.client_port, n.cluster_port, mqtt_port, args.monitor_port)
                  for n in _peers(args.peers))
    route = None
    if args.route_password_file:
        password = _secret(args.route_password_file)
        route = RouteAuth("route", password, bcrypt_secret(password))
    text = node_config(Cluster(nodes), args.node, store_dir=args.store_dir, users_file=args.users_file,
                       listen_host=args.listen_host, tls=tls, route_auth=route, max_file_store=args.max_file_store)
    write_replacing(args.out, text, mode=0o600)  # route passwords in clear
    print(f"wrote {args.out} (node {args.node}, {len(nodes)} nodes, TLS {'on' if tls else 'OFF'})")
    return 0


async def run_users(args: argparse.Namespace, settings: Settings) -> int:
    admin_hash = bcrypt_secret(_secret(args.admin_password_file)) if args.admin_password_file else None
    pids = list(args.pid)
    for pid_file in args.pid_file:
        try:
            pids.append(int(pid_file.read_text().strip()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read a pid from {pid_file}: {exc}") from None
    async with database_for(settings) as db:
        accounts = await write_users_file(db, args.out, admin_hash=admin_hash, pids=tuple(pids))
    result = {"file": str(args.out), "users": len(accounts.users), "reloaded": pids,
              "without_password": accounts.without_password}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"wrote {args.out}: {len(accounts.users)} users; reloaded {pids or 'no running node'}")
        if accounts.without_password:
            print(f"NOT ON NATS (no bcrypt hash: secret issued before migration 0026; `cityops device rotate` them): "
                  f"{', '.join(accounts.without_password)}")
    return 0


async def run_stream(args: argparse.Namespace, settings: Settings) -> int:
    nc = await jetstream.connect(args.url, ADMIN, _secret(args.admin_password_file), name="cityops-nats-stream",
                                 ca_file=args.cafile)
    try:
        js = nc.jetstream(timeout=10)
        spec = StreamSpec(replicas=args.replicas, max_age_s=args.max_age_days * 86400, max_bytes=args.max_bytes)
        stream, consumer = await jetstream.ensure_stream_when_ready(js, spec)
        leader = await jetstream.stream_leader(js, spec.name)
    finally:
        await nc.close()
    print(f"stream {spec.name}: {stream} ({args.replicas} replicas, leader {leader}); consumer: {consumer}")
    return 0
