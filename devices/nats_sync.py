"""From the registry to the NATS cluster: the users file every node includes, and its reload.

Each node reads the same users file (`include` in its config, cityops/nats_cluster/config.py)
and re-reads it on SIGHUP (`nats-server --signal reload`, or the pid file): a retired device's
user is gone and its connection closed at the reload. Unlike Mosquitto's control API this
reaches only nodes on this machine or a shared file system, so a three-machine cluster runs
`cityops nats users --pid-file ...` on each machine after a registry change (docs/nats.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

from cityops.storage import Database
from devices.broker_auth import reload_broker, write_replacing
from devices.nats_auth import NatsUsers, render_users, users

log = logging.getLogger("devices.nats_sync")


async def registry_hashes(db: Database) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """Active devices' and service accounts' bcrypt hashes (None: a secret older than migration 0026)."""
    devices = await db.fetch(
        "SELECT d.device_id, b.bcrypt_hash FROM devices d JOIN device_secrets s USING (device_id) "
        "LEFT JOIN secret_bcrypt_hashes b ON b.secret_hash = s.secret_hash WHERE d.status = 'active'")
    services = await db.fetch(
        "SELECT a.name, b.bcrypt_hash FROM service_accounts a "
        "LEFT JOIN secret_bcrypt_hashes b ON b.secret_hash = a.secret_hash")
    return ({r["device_id"]: r["bcrypt_hash"] for r in devices}, {r["name"]: r["bcrypt_hash"] for r in services})


async def nats_users(db: Database, *, admin_hash: str | None) -> NatsUsers:
    devices, services = await registry_hashes(db)
    return users(devices, services, admin_hash=admin_hash)


async def write_users_file(db: Database, path: Path, *, admin_hash: str | None,
                           pids: tuple[int, ...] = ()) -> NatsUsers:
    """Write the users file atomically (0640, keeping its owner) and SIGHUP each node's pid."""
    accounts = await nats_users(db, admin_hash=admin_hash)
    write_replacing(path, render_users(accounts))
    for pid in pids:
        reload_broker(pid=pid)
    if accounts.without_password:
        log.warning("%d account(s) have no bcrypt hash and are left out of the NATS users: %s",
                    len(accounts.without_password), ", ".join(accounts.without_password[:10]))
    return accounts
