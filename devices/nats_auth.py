"""The NATS cluster's users and permissions, from the registry (pure: no I/O).

The same isolation as Mosquitto's dynamic security (devices/dynsec.py, docs/security.md),
in NATS 2.9's terms: one user per device and per service, each allowed exactly its
subjects (default: nothing). MQTT topics are subjects with `.` for `/` (cityops/nats_cluster).

    device <id>        MQTT only; publish .<id>.telemetry and .<id>.status; subscribe .<id>.config,
                       .<id>.alert and .<id>.receipts, and `$MQTT.sub.>` (below)
    service.ingest     NATS protocol only; read the telemetry stream through the durable pull
                       consumer (consumer info, next message, ack: nothing else of the JetStream
                       API), receive its replies on its own inbox prefix, subscribe every
                       .status, publish every .receipts
    service.alerts     MQTT only; publish every .alert
    service.releases   MQTT only, as service.releases and service.releases-rollout (one secret);
                       publish every .config (retained offers), subscribe every .status
    service.api        MQTT only; nothing but connecting (the API's health probe)
    service.admin      NATS protocol only, every subject: makes the stream and the consumer
                       (`cityops nats stream`); its password never enters the registry

`$MQTT.sub.>`, found by experiment on nats-server 2.9.10: the server delivers a QoS 1
subscription's messages through a JetStream consumer to `$MQTT.sub.<random id>` on the
subscriber's own connection, and checks that subscription against the MQTT user's rights;
without it every QoS 1 subscribe is refused. Retained messages, the Last Will and QoS 1
publishes need no `$MQTT` subject of the user's own. A device can never use that right itself:
the MQTT listener refuses any topic under `$MQTT/` (SUBACK 0x80), and a device may not connect
with the NATS protocol (`allowed_connection_types`), where it could subscribe to it.

Passwords: NATS reads bcrypt (`$2a$`) hashes, not the registry's `$7$` ones; the registry keeps
a bcrypt partner of every secret issued since migration 0026 (devices/registry.py). A device
or service whose secret is older has none and is left out (`NatsUsers.without_password`
names them): one `cityops device rotate` brings it in.

Limit (docs/security.md, "NATS"): NATS 2.9 cannot bind an MQTT client id to a user. A device
that connects under another's client id takes over that session (the other is disconnected),
but the session's subscriptions are checked again against the newcomer's rights: it receives
nothing of the other's, and publishes nothing as it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cityops.nats_cluster.config import INGEST_INBOX, ConsumerSpec, every, subject
from devices.dynsec import ADMIN, SERVICE_CLIENTS, SERVICE_PREFIX

DEVICE_WRITES = ("telemetry", "status")
DEVICE_READS = ("config", "alert", "receipts")  # as on Mosquitto (devices/dynsec.py)
MQTT_DELIVERY = "$MQTT.sub.>"   # QoS 1 deliveries to an MQTT subscriber (above)
INGEST = SERVICE_PREFIX + "ingest"


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()

    def as_conf(self) -> dict[str, dict[str, list[str]]]:
        """NATS's permission map; an empty allow list is written as a deny of everything
        (NATS reads a missing list as "no restriction")."""
        return {"publish": _allow(self.publish), "subscribe": _allow(self.subscribe)}


def _allow(subjects: Sequence[str]) -> dict[str, list[str]]:
    return {"allow": list(subjects)} if subjects else {"deny": [">"]}


@dataclass(frozen=True)
class User:
    name: str
    bcrypt_hash: str
    permissions: Permissions | None      # None: every subject (the admin only)
    connection_types: tuple[str, ...]    # NATS's allowed_connection_types: MQTT, STANDARD

    def as_conf(self) -> dict[str, object]:
        out: dict[str, object] = {"user": self.name, "password": self.bcrypt_hash}
        if self.permissions is not None:
            out["permissions"] = self.permissions.as_conf()
        out["allowed_connection_types"] = list(self.connection_types)
        return out


def device_permissions(device_id: str) -> Permissions:
    return Permissions(publish=tuple(subject(device_id, c) for c in DEVICE_WRITES),
                       subscribe=(*(subject(device_id, c) for c in DEVICE_READS), MQTT_DELIVERY))


def ingest_permissions(consumer: ConsumerSpec | None = None) -> Permissions:
    """What ingest's pull consumer needs, and no more of the JetStream API: it cannot create,
    change or delete a stream or consumer, list them, or read the stream any other way."""
    c = consumer or ConsumerSpec()
    return Permissions(
        publish=(f"$JS.API.CONSUMER.INFO.{c.stream}.{c.durable}",       # its backlog (num_pending)
                 f"$JS.API.CONSUMER.MSG.NEXT.{c.stream}.{c.durable}",   # fetch a batch
                 f"$JS.ACK.{c.stream}.{c.durable}.>",                   # ack after the commit
                 every("receipts")),
        subscribe=(f"{INGEST_INBOX}.>", every("status")))


SERVICE_PERMISSIONS: dict[str, Permissions] = {
    "ingest": ingest_permissions(),
    "alerts": Permissions(publish=(every("alert"),)),
    "releases": Permissions(publish=(every("config"),), subscribe=(every("status"), MQTT_DELIVERY)),
    "api": Permissions(),
}


def service_users(name: str, bcrypt_hash: str) -> list[User]:
    """A service account's NATS users: ingest one (all its processes share the consumer), the
    others under the same usernames as on Mosquitto (devices/dynsec.py)."""
    permissions = SERVICE_PERMISSIONS[name]
    if name == "ingest":
        return [User(INGEST, bcrypt_hash, permissions, ("STANDARD",))]
    return [User(username, bcrypt_hash, permissions, ("MQTT",)) for username, _ in SERVICE_CLIENTS[name]]


@dataclass(frozen=True)
class NatsUsers:
    users: list[User]
    without_password: list[str]  # active accounts with no bcrypt hash yet: rotate them


def users(devices: Mapping[str, str | None], services: Mapping[str, str | None], *,
          admin_hash: str | None = None) -> NatsUsers:
    """`devices`: active device id -> bcrypt hash (None: issued before migration 0026);
    `services`: service account name -> bcrypt hash; `admin_hash`: service.admin's."""
    out = [User(d, h, device_permissions(d), ("MQTT",)) for d, h in sorted(devices.items()) if h]
    missing = sorted(d for d, h in devices.items() if not h)
    for name in sorted(services):
        if name not in SERVICE_PERMISSIONS:
            continue
        bcrypt_hash = services[name]
        if bcrypt_hash:
            out += service_users(name, bcrypt_hash)
        else:
            missing.append(SERVICE_PREFIX + name)
    if admin_hash:
        out.append(User(ADMIN, admin_hash, None, ("STANDARD",)))
    return NatsUsers(out, missing)


def render_users(accounts: NatsUsers) -> str:
    """The users file every node includes (config.node_config's `users_file`)."""
    lines = ["# NATS users from the registry: generated (cityops nats users), do not edit",
             "authorization {", "  users = ["]
    lines += [f"    {json.dumps(u.as_conf(), sort_keys=False)}" for u in accounts.users]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)
