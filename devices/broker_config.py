"""The production Mosquitto config (mosquitto.conf), generated so it always says what
ingest and the device accounts rely on:

- `persistence true` with a `persistence_location`: persistent sessions (ingest's and the
  devices') and their queued QoS 1 messages survive a broker restart;
- a large `max_queued_messages` (the default 1000 drops a consumer's backlog after a
  short outage) and `max_inflight_messages` matching ingest's Receive Maximum;
- the dynamic security plugin (`--dynsec-file`, devices/dynsec.py): accounts bound to
  client ids, changed at run time by `cityops device`; or, without it, `password_file` and
  `acl_file` re-read on SIGHUP (`pid_file` tells `cityops device` the pid);
- limits: `max_packet_size` (256 KiB) and `max_queued_bytes` per session;
- `allow_anonymous false`: no client without an account;
- optional TLS listeners (8883) beside or instead of the plain one.

`cityops device broker-config --out FILE` writes it; `mosquitto -c FILE` runs it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cityops.settings import Settings
from devices.errors import InvalidField

MAX_QUEUED_MESSAGES = 1_000_000
MAX_INFLIGHT_MESSAGES = 10_000  # ingest's default Receive Maximum (CITYOPS_INGEST__RECEIVE_MAXIMUM)
# Limits on what comes in (docs/devices.md, "Limits"): an agent's biggest message (200
# readings) is about 25 KB; a bigger packet gets the client disconnected.
MAX_PACKET_SIZE = 262_144
# a session's queue in bytes as well as messages: 1,000,000 ingest messages of ~300 bytes
# fit; a flood of maximal packets stops at 1 GiB per session instead of the broker's memory
MAX_QUEUED_BYTES = 1_073_741_824
# bytes sent to one client and not yet acknowledged: with ingest's Receive Maximum (10,000)
# alone, a flood of 256 KiB messages could put 2.5 GiB in its buffers; this bounds them
MAX_INFLIGHT_BYTES = 67_108_864
DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"  # Debian's path


@dataclass(frozen=True)
class Tls:
    certfile: str
    keyfile: str
    cafile: str | None = None          # to verify client certificates, if required
    require_certificate: bool = False  # devices present a certificate as well as the password

    def __post_init__(self) -> None:
        if self.require_certificate and not self.cafile:
            raise InvalidField("cafile", "requiring client certificates needs the CA that signed them")


@dataclass(frozen=True)
class Listener:
    port: int
    bind: str | None = None  # None: every interface
    tls: Tls | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65_535:
            raise InvalidField("listener", f"port {self.port} is not 1..65535")

    def lines(self) -> list[str]:
        out = [f"listener {self.port}" + (f" {self.bind}" if self.bind else ""), "protocol mqtt"]
        if self.tls is not None:
            t = self.tls
            out += [f"certfile {t.certfile}", f"keyfile {t.keyfile}", "tls_version tlsv1.2"]
            if t.cafile:
                out.append(f"cafile {t.cafile}")
            out.append(f"require_certificate {'true' if t.require_certificate else 'false'}")
        return out


@dataclass(frozen=True)
class BrokerConfig:
    password_file: str  # ignored when dynsec_file is set
    acl_file: str
    persistence_dir: str
    dynsec_file: str | None = None  # the dynamic security plugin's config: the isolated setup
    dynsec_plugin: str = DYNSEC_PLUGIN
    max_packet_size: int = MAX_PACKET_SIZE
    max_queued_bytes: int = MAX_QUEUED_BYTES
    max_inflight_bytes: int = MAX_INFLIGHT_BYTES
    listeners: tuple[Listener, ...] = (Listener(1883),)
    pid_file: str | None = None
    max_queued_messages: int = MAX_QUEUED_MESSAGES
    max_inflight_messages: int = MAX_INFLIGHT_MESSAGES
    log_dest: str = "stdout"
    # sessions of clients gone this long are dropped (MQTT 3.1.1 clients without an expiry)
    persistent_client_expiration: str = "30d"
    extra: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.listeners:
            raise InvalidField("listener", "at least one listener is needed")
        if len({lst.port for lst in self.listeners}) != len(self.listeners):
            raise InvalidField("listener", "two listeners on the same port")
        for name in ("persistence_dir",) if self.dynsec_file else ("password_file", "acl_file", "persistence_dir"):
            if not getattr(self, name):
                raise InvalidField(name, "must be given")
        if self.max_queued_messages < 10_000:
            raise InvalidField("max_queued_messages", "below 10000 a consumer's backlog is dropped after an outage")
        if not 1 <= self.max_inflight_messages <= 65_535:
            raise InvalidField("max_inflight_messages", "must be 1..65535")
        if not 65_536 <= self.max_packet_size <= 262_144:
            raise InvalidField("max_packet_size", "keep it 64-256 KB: an agent's biggest message is about 25 KB")


def auth_lines(config: BrokerConfig) -> list[str]:
    if config.dynsec_file:
        return ["# Accounts: the dynamic security plugin, kept in line with the registry by `cityops device`",
                "# over $CONTROL/dynamic-security/v1; each account bound to its client id (docs/devices.md).",
                "per_listener_settings false", "allow_anonymous false",
                f"plugin {config.dynsec_plugin}", f"plugin_opt_config_file {config.dynsec_file}"]
    return ["# Accounts: password_file and acl_file are written by `cityops device` from the registry",
            "# and re-read when the broker gets SIGHUP. They do not bind client ids: prefer --dynsec-file.",
            "per_listener_settings false", "allow_anonymous false",
            f"password_file {config.password_file}", f"acl_file {config.acl_file}"]


def render_broker_config(config: BrokerConfig) -> str:
    persistence = str(PurePosixPath(config.persistence_dir)) + "/"
    lines = [
        "# Generated by `cityops device broker-config`; edits are overwritten.",
        *auth_lines(config),
        "",
        "# ingest's persistent session and queued QoS 1 messages survive restarts and outages",
        "persistence true",
        f"persistence_location {persistence}",
        "autosave_interval 60",
        f"persistent_client_expiration {config.persistent_client_expiration}",
        f"max_queued_messages {config.max_queued_messages}",
        f"max_queued_bytes {config.max_queued_bytes}",
        f"max_inflight_messages {config.max_inflight_messages}",
        f"max_inflight_bytes {config.max_inflight_bytes}",
        "",
        "# what comes in: bigger packets disconnect their sender (docs/devices.md, Limits)",
        f"max_packet_size {config.max_packet_size}",
        "",
    ]
    if config.pid_file:
        lines += [f"pid_file {config.pid_file}", ""]
    lines += ["log_type error", "log_type warning", "log_type notice", f"log_dest {config.log_dest}",
              "connection_messages true", ""]
    for listener in config.listeners:
        lines += [*listener.lines(), ""]
    lines += list(config.extra)
    return "\n".join(lines).rstrip("\n") + "\n"


def parse_listener(text: str, tls: Tls | None = None) -> Listener:
    """`1883`, `127.0.0.1:1883` or `0.0.0.0:8883` (TLS when `tls` is given)."""
    bind, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise InvalidField("listener", f"{text!r} is not PORT or ADDRESS:PORT") from None
    return Listener(number, bind or None, tls)


def broker_config(*, password_file: str, acl_file: str, persistence_dir: str, plain: Sequence[str] = ("1883",),
                  tls_listeners: Sequence[str] = (), tls: Tls | None = None, pid_file: str | None = None,
                  dynsec_file: str | None = None, dynsec_plugin: str = DYNSEC_PLUGIN) -> BrokerConfig:
    if tls_listeners and tls is None:
        raise InvalidField("tls", "a TLS listener needs --certfile and --keyfile")
    listeners = [parse_listener(p) for p in plain] + [parse_listener(p, tls) for p in tls_listeners]
    return BrokerConfig(password_file=password_file, acl_file=acl_file, persistence_dir=persistence_dir,
                        listeners=tuple(listeners), pid_file=pid_file, dynsec_file=dynsec_file,
                        dynsec_plugin=dynsec_plugin)


# --- `cityops device broker-config` ---------------------------------------------------------

def add_command(actions: argparse._SubParsersAction[Any]) -> None:
    text = "write the broker's mosquitto.conf (persistence, queues, password and ACL files, TLS)"
    sub = actions.add_parser("broker-config", help=text, description=text + ".")
    sub.add_argument("--out", type=Path, help="the file to write (default: print it)")
    sub.add_argument("--password-file", help="as the broker sees it (default CITYOPS_DEVICES__BROKER_PASSWORD_FILE)")
    sub.add_argument("--acl-file", help="as the broker sees it (default CITYOPS_DEVICES__BROKER_ACL_FILE)")
    sub.add_argument("--dynsec-file", help="the dynamic security plugin's config as the broker sees it (default "
                     "CITYOPS_DEVICES__BROKER_DYNSEC_FILE): accounts bound to client ids, changed at run time")
    sub.add_argument("--dynsec-plugin", default=DYNSEC_PLUGIN, help=f"the plugin's path (default {DYNSEC_PLUGIN})")
    sub.add_argument("--pid-file", help="where the broker writes its pid (default CITYOPS_DEVICES__BROKER_PID_FILE)")
    sub.add_argument("--persistence-dir", default="/var/lib/mosquitto", help="default /var/lib/mosquitto")
    sub.add_argument("--listener", action="append", metavar="[ADDRESS:]PORT",
                     help="a plain MQTT listener; repeat for more (default 1883)")
    sub.add_argument("--tls-listener", action="append", default=[], metavar="[ADDRESS:]PORT",
                     help="a TLS listener, e.g. 8883 (needs --certfile and --keyfile)")
    sub.add_argument("--certfile", help="the broker's certificate (PEM)")
    sub.add_argument("--keyfile", help="its private key (PEM)")
    sub.add_argument("--cafile", help="CA for client certificates")
    sub.add_argument("--require-certificate", action="store_true", help="devices must present a certificate")
    sub.set_defaults(handler=run_broker_config)


def _absolute(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None


async def run_broker_config(args: argparse.Namespace, settings: Settings) -> int:
    s = settings.devices
    tls = None
    if args.certfile or args.keyfile:
        if not (args.certfile and args.keyfile):
            raise InvalidField("tls", "give both --certfile and --keyfile")
        tls = Tls(args.certfile, args.keyfile, args.cafile, args.require_certificate)
    config = broker_config(
        password_file=args.password_file or _absolute(s.broker_password_file) or "",
        acl_file=args.acl_file or _absolute(s.broker_acl_file) or "",
        persistence_dir=args.persistence_dir,
        plain=args.listener if args.listener is not None else (() if args.tls_listener else ("1883",)),
        tls_listeners=args.tls_listener, tls=tls,
        pid_file=args.pid_file or _absolute(s.broker_pid_file),
        dynsec_file=args.dynsec_file or _absolute(s.broker_dynsec_file), dynsec_plugin=args.dynsec_plugin)
    text = render_broker_config(config)
    if args.out is None:
        print(text, end="")
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    except OSError as exc:
        raise InvalidField("out", f"cannot write {args.out}: {exc.strerror}") from None
    accounts = config.dynsec_file or f"{config.password_file} and {config.acl_file}"
    print(f"wrote {args.out}: {', '.join(str(lst.port) for lst in config.listeners)}; accounts from {accounts}")
    return 0
