"""The broker's accounts as Mosquitto dynamic-security objects (pure: no I/O).

Why the dynamic security plugin and not password/ACL files (docs/devices.md, "Broker
isolation"): each plugin client may carry a `clientid`, and Mosquitto then refuses that
username under any other client id, so no account can resume or kick another's session;
its subscribe ACLs are checked on the filter as sent, `$share/...` prefix included, so
a device cannot join ingest's share group; and it is changed at run time over MQTT
(`$CONTROL/dynamic-security/v1`), which reaches a broker in another container or host.

What each account may do (default: deny send, receive and subscribe):

    device <id>          clientid <id>; send .../<id>/telemetry and .../<id>/status;
                         subscribe and receive .../<id>/config, .../<id>/alert and
                         .../<id>/receipts
    service.ingest-<n>   clientid cityops-ingest-<n>; subscribe $share/<group>/.../+/telemetry
                         (and the plain filter) and .../+/status; receive them; subscribe and
                         receive the three $SYS counts its backlog metric reads (INGEST_SYS_TOPICS);
                         send every .../receipts
    service.alerts       clientid cityops-alerts; send every .../alert (the devices' LEDs)
    service.releases     clientid cityops-releases (the service), and service.releases-rollout
                         with clientid cityops-releases-rollout (`cityops release rollout`, one
                         secret for both); send every .../config, subscribe and receive .../status
    service.api          clientid cityops-api; no topic at all (the API only checks the broker)
    service.admin        the $CONTROL/dynamic-security API only

A service's secret (`cityops device rotate --service NAME`) is shared by its usernames; each
username is bound to one client id, so no service can take another's or ingest's session.

Mosquitto 2.0's plugin has no %u/%c in ACL topics, so each device has its own role
(`device.<id>`) with literal topics. Passwords are the registry's `$7$` PBKDF2-SHA512
hashes, which the plugin's config file takes as they are (salt, hash, iterations).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contract.telemetry import TOPIC_ROOT

SERVICE_PREFIX = "service."
ADMIN = SERVICE_PREFIX + "admin"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
DEFAULT_ACCESS = {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                  "unsubscribe": True}


@dataclass(frozen=True)
class Acl:
    acltype: str
    topic: str
    allow: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow}


@dataclass(frozen=True)
class Role:
    name: str
    acls: tuple[Acl, ...]

    def as_json(self) -> dict[str, Any]:
        return {"rolename": self.name, "acls": [a.as_json() for a in self.acls]}


@dataclass(frozen=True)
class Client:
    """One plugin client: a username bound to a client id (None: any id) with one role."""

    username: str
    secret_hash: str
    clientid: str | None
    role: str

    def as_json(self) -> dict[str, Any]:
        _, _, iterations, salt, digest = self.secret_hash.split("$")
        out: dict[str, Any] = {"username": self.username, "salt": salt, "password": digest,
                               "iterations": int(iterations), "roles": [{"rolename": self.role}]}
        if self.clientid is not None:
            out["clientid"] = self.clientid
        return out


# the broker's counts ingest reads for its backlog metric and push-back (ingest/source.py's SYS_TOPICS,
# docs/ingest.md): these three literal topics, no $SYS wildcard (a test holds the two lists together)
INGEST_SYS_TOPICS = ("$SYS/broker/store/messages/count", "$SYS/broker/retained messages/count",
                     "$SYS/broker/publish/messages/dropped")


DEVICE_READS = ("config", "alert", "receipts")  # a device's own topics it may subscribe to


def _receive(*topics: str) -> list[Acl]:
    return [Acl("publishClientReceive", t) for t in topics]


def device_role(device_id: str) -> Role:
    own = f"{TOPIC_ROOT}/{device_id}"
    return Role(f"device.{device_id}", (
        Acl("publishClientSend", f"{own}/telemetry"), Acl("publishClientSend", f"{own}/status"),
        *(Acl("subscribeLiteral", f"{own}/{channel}") for channel in DEVICE_READS),
        *_receive(*(f"{own}/{channel}" for channel in DEVICE_READS))))


def service_roles(share_group: str) -> list[Role]:
    telemetry, status = f"{TOPIC_ROOT}/+/telemetry", f"{TOPIC_ROOT}/+/status"
    ingest_filters = [telemetry, status] + ([f"$share/{share_group}/{telemetry}"] if share_group else [])
    return [
        Role("service.ingest", (*(Acl("subscribeLiteral", f) for f in (*ingest_filters, *INGEST_SYS_TOPICS)),
                                *_receive(telemetry, status, *INGEST_SYS_TOPICS),
                                Acl("publishClientSend", f"{TOPIC_ROOT}/+/receipts"))),
        Role("service.alerts", (Acl("publishClientSend", f"{TOPIC_ROOT}/+/alert"),)),
        Role("service.releases", (Acl("publishClientSend", f"{TOPIC_ROOT}/+/config"),
                                  Acl("subscribeLiteral", status), *_receive(status))),
        Role("service.api", ()),
        Role("service.admin", (Acl("publishClientSend", f"{CONTROL_TOPIC}"),
                               Acl("subscribeLiteral", f"{CONTROL_TOPIC}/response"),
                               *_receive(f"{CONTROL_TOPIC}/response"))),
    ]


def ingest_username(n: int) -> str:
    return f"{SERVICE_PREFIX}ingest-{n}"


def ingest_client_id(n: int) -> str:
    return f"cityops-ingest-{n}"


# service -> its (username, client id) pairs, besides ingest's numbered consumers
SERVICE_CLIENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "alerts": ((SERVICE_PREFIX + "alerts", "cityops-alerts"),),
    "releases": ((SERVICE_PREFIX + "releases", "cityops-releases"),
                 (SERVICE_PREFIX + "releases-rollout", "cityops-releases-rollout")),
    "api": ((SERVICE_PREFIX + "api", "cityops-api"),),
}


def service_clients(name: str, ingest_consumers: int) -> list[tuple[str, str]]:
    """A service account's broker usernames, each with the one client id it may use."""
    if name == "ingest":
        return [(ingest_username(n), ingest_client_id(n)) for n in range(1, ingest_consumers + 1)]
    return list(SERVICE_CLIENTS.get(name, ()))


@dataclass(frozen=True)
class Desired:
    """What the broker should hold: every client and role, from the registry."""

    clients: dict[str, Client]
    roles: dict[str, Role]


def desired(devices: Mapping[str, str], services: Mapping[str, str], *, ingest_consumers: int,
            share_group: str) -> Desired:
    """`devices`: active device id -> hash; `services`: service account name -> hash."""
    clients = [Client(d, h, d, device_role(d).name) for d, h in devices.items()]
    roles = [device_role(d) for d in devices] + service_roles(share_group)
    for name in ("ingest", *SERVICE_CLIENTS):
        if name in services:
            clients += [Client(username, services[name], clientid, SERVICE_PREFIX + name)
                        for username, clientid in service_clients(name, ingest_consumers)]
    if "admin" in services:
        clients.append(Client(ADMIN, services["admin"], None, "service.admin"))
    return Desired({c.username: c for c in clients}, {r.name: r for r in roles})


def render_config(want: Desired) -> str:
    """The plugin's config file (`plugin_opt_config_file`), read when the broker starts."""
    return json.dumps({
        "defaultACLAccess": DEFAULT_ACCESS,
        "clients": [want.clients[u].as_json() for u in sorted(want.clients)],
        "groups": [],
        "roles": [want.roles[r].as_json() for r in sorted(want.roles)],
    }, indent=1) + "\n"


# --- bringing a running broker to the desired state ---------------------------------------

@dataclass(frozen=True)
class Current:
    """What a running broker holds (from listClients / listRoles, verbose)."""

    clients: dict[str, tuple[str | None, frozenset[str]]]  # username -> (clientid, role names)
    roles: dict[str, frozenset[Acl]]

    @classmethod
    def from_listings(cls, clients: Sequence[Mapping[str, Any]], roles: Sequence[Mapping[str, Any]]) -> Current:
        return cls(
            {c["username"]: (c.get("clientid") or None, frozenset(r["rolename"] for r in c.get("roles", [])))
             for c in clients},
            {r["rolename"]: frozenset(Acl(a["acltype"], a["topic"], a.get("allow", True))
                                      for a in r.get("acls", [])) for r in roles})

    def without(self, usernames: set[str]) -> Current:
        return Current({u: c for u, c in self.clients.items() if u not in usernames}, self.roles)


@dataclass(frozen=True)
class Plan:
    commands: list[dict[str, Any]]
    no_secret: list[str]  # wanted but absent, and no secret here to create it with


def plan(want: Desired, have: Current, secrets: Mapping[str, str]) -> Plan:
    """Commands that make `have` into `want`. `secrets`: username -> a secret just issued
    (the control API takes passwords in clear only; the registry keeps only hashes)."""
    commands: list[dict[str, Any]] = []
    for name, role in sorted(want.roles.items()):
        if name not in have.roles:
            commands.append({"command": "createRole", "rolename": name,
                             "acls": [a.as_json() for a in role.acls]})
            continue
        present, wanted = have.roles[name], frozenset(role.acls)
        commands += [{"command": "removeRoleACL", "rolename": name, "acltype": a.acltype, "topic": a.topic}
                     for a in sorted(present - wanted, key=str)]
        commands += [{"command": "addRoleACL", "rolename": name, **a.as_json()}
                     for a in sorted(wanted - present, key=str)]
    no_secret = []
    for username, client in sorted(want.clients.items()):
        secret = secrets.get(username)
        if username not in have.clients:
            if secret is None:
                no_secret.append(username)
                continue
            command: dict[str, Any] = {"command": "createClient", "username": username, "password": secret,
                                       "roles": [{"rolename": client.role}]}
            if client.clientid is not None:
                command["clientid"] = client.clientid
            commands.append(command)
            continue
        clientid, roles = have.clients[username]
        if clientid != client.clientid:
            change: dict[str, Any] = {"command": "setClientId", "username": username}
            if client.clientid is not None:
                change["clientid"] = client.clientid
            commands.append(change)
        if roles != {client.role}:
            commands.append({"command": "modifyClient", "username": username,
                             "roles": [{"rolename": client.role}]})
        if secret is not None:
            commands.append({"command": "setClientPassword", "username": username, "password": secret})
    for username in sorted(set(have.clients) - set(want.clients)):
        commands.append({"command": "deleteClient", "username": username})  # also disconnects it
    for name in sorted(set(have.roles) - set(want.roles)):
        if name.startswith("device."):
            commands.append({"command": "deleteRole", "rolename": name})
    return Plan(commands, no_secret)


def differences(want: Desired, have: Current) -> list[str]:
    """What still differs after applying a plan (read back from the broker): empty when done."""
    out = [f"{u}: missing" for u in sorted(set(want.clients) - set(have.clients))]
    out += [f"{u}: still present" for u in sorted(set(have.clients) - set(want.clients))]
    for username in sorted(set(want.clients) & set(have.clients)):
        client, (clientid, roles) = want.clients[username], have.clients[username]
        if clientid != client.clientid or roles != {client.role}:
            out.append(f"{username}: client id {clientid!r}, roles {sorted(roles)}")
    return out
