"""Least-privilege database roles (issue 18, part 7), as attacks against real PostgreSQL.

Each test logs in as a service's role (migration 0023, LOGIN given as `cityops db roles
--apply` gives it) and tries what that service must not do; the refusals are counted.
The roles' legitimate paths run as the same roles: every Grafana panel in
tests/test_dashboards.py, and ingest's write path here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import asyncpg
import pytest
from pydantic import SecretStr

from cityops.settings import StorageSettings
from cityops.storage import Database, migrate
from cityops.storage.roles import login_statements, role_url, scram_verifier
from contract.telemetry import telemetry_topic
from tests.conftest import scratch_database
from tests.db_role_helpers import connect_as
from tests.ingest_helpers import eventually, frog_payload, ingest_settings, publish, rows_of, running_ingest

NOW = datetime.now(UTC).replace(microsecond=0)




# --- a database holding every kind of secret and personal row ---------------------------------

SECRET_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
WEBHOOK_SECRET = "whsec-plaintext-0123456789"


async def seed_secrets(db: Database) -> None:
    await db.execute("""
        INSERT INTO users (user_id, username, role, household_id, password_hash) VALUES
        ('u1', 'tenant', 'householder', 'h1', $1), ('u2', 'amy', 'operator', NULL, $1)""", SECRET_HASH)
    await db.execute("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ('\\x01', 'u1', $1)",
                     NOW + timedelta(days=1))
    await db.execute("INSERT INTO alert_subscriptions (user_id, role, channel, target, secret) VALUES "
                     "('hook', 'operator', 'webhook', 'https://ops.example.org/hook', $1)", WEBHOOK_SECRET)
    await db.execute("INSERT INTO devices (device_id, kind, household_id, lon, lat) VALUES "
                     "('frog-1', 'frog', 'h1', -2.6, 51.45)")
    await db.execute("INSERT INTO damp_home_settings (household_id, area) VALUES ('h1', 'north')")
    await db.execute("INSERT INTO damp_diary (household_id, ts, activity, note) VALUES "
                     "('h1', $1, 'shower', 'we dry clothes in the bedroom')", NOW)
    await db.execute("INSERT INTO frog_readings (device_id, ts, air_temp_c, rh_pct) VALUES "
                     "('frog-1', $1, 17.5, 81)", NOW)
    await db.execute("INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, "
                     "damp_hours_7d, condensation_hours_7d, surface_rh_30d, surface_t_30d, reasons, changes, "
                     "faults, metrics) VALUES ('frog-1', $1, 'h1', 'high', 2.1, 40, 6, 82.5, 14.1, $2::jsonb, "
                     "'[]', '[]', '{}')", NOW, json.dumps(["surface RH high"]))


@pytest.fixture(scope="module")
async def secured(postgres_admin_url: str) -> AsyncIterator[str]:
    """The owner's URL of a migrated database with secrets and personal rows in it."""
    async with scratch_database(postgres_admin_url) as url, Database.connect(url) as db:
        await migrate(db, StorageSettings())
        await seed_secrets(db)
        yield url


async def refusals(db: Database, queries: list[str]) -> tuple[int, list[str]]:
    """How many of the queries the server refuses (permission denied), and what the others returned."""
    refused, leaked = 0, []
    for query in queries:
        try:
            async with db.pool.acquire() as conn:
                rows = await conn.fetch(query)
        except asyncpg.InsufficientPrivilegeError:
            refused += 1
        else:
            leaked.append(f"{query}: {len(rows)} rows")
    return refused, leaked


GRAFANA_ATTACKS = [
    "SELECT username, password_hash FROM users",
    "SELECT token_hash, user_id FROM sessions",
    "SELECT target, secret FROM alert_subscriptions",
    "SELECT payload FROM alert_outbox",
    "SELECT note FROM damp_diary",
    "SELECT device_id, ts, air_temp_c, rh_pct FROM frog_readings",
    "SELECT * FROM frog_hourly",
    "SELECT household_id, lat, lon FROM devices",
    "SELECT secret_hash FROM device_secrets",
    "SELECT * FROM invitations",
    "SELECT * FROM login_attempts",
    "SELECT * FROM household_members",
]


async def test_grafana_reads_no_secret_no_account_no_diary_and_no_home_reading(secured: str) -> None:
    async with connect_as(secured, "grafana") as grafana:
        assert await grafana.fetchval("SELECT current_user") == "cityops_grafana"
        refused, leaked = await refusals(grafana, GRAFANA_ATTACKS)
        readable = await grafana.fetchval("""
            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
              AND has_table_privilege(current_user, c.oid, 'SELECT')""")
        # what it does read: the homes only as household id, area and assessment
        homes = await grafana.fetch("SELECT * FROM reporting.damp_assessments")
        device = await grafana.fetchrow("SELECT * FROM reporting.devices WHERE device_id = 'frog-1'")
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await grafana.pool.execute("CREATE TEMP TABLE t (x int)")
    assert (refused, leaked) == (len(GRAFANA_ATTACKS), [])
    assert readable == 0
    assert [(h["household_id"], h["area"], h["level"]) for h in homes] == [("h1", "north", "high")]
    assert set(homes[0].keys()).isdisjoint({"lat", "lon", "address", "note", "rh_pct"})
    assert device is not None and (device["lat"], device["lon"]) == (None, None)


async def test_no_reporting_view_carries_a_secret_or_a_diary(secured: str) -> None:
    async with connect_as(secured, "grafana") as grafana:
        columns = await grafana.fetch("SELECT table_name, column_name FROM information_schema.columns "
                                      "WHERE table_schema = 'reporting'")
        views = {r["table_name"] for r in columns}
        dumped = [json.dumps([dict(r) for r in await grafana.fetch(f"SELECT * FROM reporting.{v}")], default=str)
                  for v in sorted(views)]
    names = {r["column_name"] for r in columns}
    assert names.isdisjoint({"secret", "password_hash", "token_hash", "secret_hash", "note", "payload", "target",
                             "email", "household_members"})
    assert len(views) >= 15
    assert not any(WEBHOOK_SECRET in d or SECRET_HASH in d or "bedroom" in d for d in dumped)


INGEST_ATTACKS = [
    "INSERT INTO users (user_id, username, role, password_hash) VALUES ('evil', 'evil', 'admin', 'x')",
    "UPDATE users SET role = 'admin'",
    "SELECT token_hash FROM sessions",
    "SELECT password_hash FROM users",
    "SELECT secret FROM alert_subscriptions",
    "SELECT note FROM damp_diary",
    "SELECT air_temp_c FROM frog_readings",
    "DELETE FROM frog_readings",
    "INSERT INTO device_secrets (device_id, secret_hash) VALUES ('frog-1', '$7$x')",
    "UPDATE alerts SET state = 'resolved'",
]


async def test_ingest_may_not_write_users_or_read_sessions_but_its_write_path_works(
        secured: str, mosquitto, unique: str) -> None:
    from tests.ingest_helpers import register

    async with Database.connect(secured) as owner:
        await register(owner, f"{unique}-f0")
        async with connect_as(secured, "ingest") as ingest_db:
            refused, leaked = await refusals(ingest_db, INGEST_ATTACKS)
            # the real service, as the ingest role: MQTT in, readings and device news committed
            settings = ingest_settings(unique)
            async with running_ingest(ingest_db, mosquitto.url, settings):
                device = f"{unique}-f0"
                await publish(mosquitto.url, [(telemetry_topic(device), frog_payload(device, seq, readings=3))
                                              for seq in range(4)])
                await publish(mosquitto.url, [(telemetry_topic(device), b"not json")])
                await eventually(lambda: _count(owner, "frog_readings", device, 12), what="12 readings")
                await eventually(lambda: _count(owner, "dead_letters", device, 1), what="1 dead letter")
        last_seen = await owner.fetchval("SELECT last_seen FROM devices WHERE device_id = $1", device)
        users = await owner.fetchval("SELECT count(*) FROM users")
    assert (refused, leaked) == (len(INGEST_ATTACKS), [])
    assert last_seen is not None and users == 2
    assert await _rows(secured, device) == 12


async def _count(db: Database, table: str, device: str, expected: int) -> bool:
    return int(await db.fetchval(f"SELECT count(*) FROM {table} WHERE device_id = $1", device)) == expected


async def _rows(url: str, device: str) -> int:
    async with Database.connect(url) as db:
        return await rows_of(db, [device])


async def test_every_table_is_granted_to_a_service_role_and_none_to_grafana(secured: str) -> None:
    """The checklist for later migrations: a new table must be granted (0023_roles.sql's rule)."""
    async with Database.connect(secured) as db:
        rows = await db.fetch("""
            SELECT c.relname,
                   array_agg(r.service ORDER BY r.service) FILTER (
                       WHERE has_table_privilege(r.role_name, c.oid, 'SELECT, INSERT, UPDATE, DELETE')) AS services
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN db_roles r
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
            GROUP BY c.relname""")
        supers = await db.fetchval("SELECT count(*) FROM db_roles r JOIN pg_roles p ON p.rolname = r.role_name "
                                   "WHERE p.rolsuper OR p.rolcreaterole OR p.rolcreatedb OR p.rolbypassrls")
    ungranted = sorted(r["relname"] for r in rows if not r["services"])
    to_grafana = sorted(r["relname"] for r in rows if "grafana" in (r["services"] or []))
    assert len(rows) >= 45
    assert ungranted == [], f"grant these in their migration: SELECT cityops_grant('<service>', ...): {ungranted}"
    assert to_grafana == []
    assert supers == 0


async def test_roles_are_created_once_per_cluster_and_granted_per_database(postgres_admin_url: str) -> None:
    """A prefix of the test's own: two databases migrate, the roles exist once, each database grants."""
    prefix = f"t{datetime.now(UTC):%H%M%S%f}_"
    storage = StorageSettings(role_prefix=prefix)
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        async with scratch_database(postgres_admin_url) as one, scratch_database(postgres_admin_url) as two:
            for url in (one, two):
                async with Database.connect(url) as db:
                    await migrate(db, storage)
            made = await admin.fetchval("SELECT count(*) FROM pg_roles WHERE rolname LIKE $1 AND NOT rolcanlogin",
                                        prefix + "%")
            for url in (one, two):
                async with Database.connect(url) as db:
                    granted = await db.fetchval("SELECT has_table_privilege($1, 'frog_readings', 'INSERT')",
                                                prefix + "ingest")
                    assert granted
        assert made == 6
    finally:
        for service in ("ingest", "api", "rules", "alerts", "releases", "grafana"):
            await admin.execute(f'DROP ROLE IF EXISTS "{prefix}{service}"')
        await admin.close()


def test_login_statements_send_scram_verifiers_not_passwords() -> None:
    roles = {"api": "cityops_api", "grafana": "cityops_grafana"}
    statements = login_statements(roles, {"api": SecretStr("s3cret-pass")})
    assert statements[0].startswith('ALTER ROLE "cityops_api" LOGIN PASSWORD \'SCRAM-SHA-256$4096:')
    assert "s3cret-pass" not in " ".join(statements)
    assert statements[1] == 'ALTER ROLE "cityops_grafana" LOGIN;'
    # RFC 7677's test vector is for SCRAM's exchange, so check the verifier's shape and determinism
    salt = b"0123456789abcdef"
    assert scram_verifier("pencil", salt) == scram_verifier("pencil", salt) != scram_verifier("pencil2", salt)
    assert urlsplit(role_url("postgresql://o:x@db:5433/c?sslmode=require", "cityops_api", "p@ss")).netloc == \
        "cityops_api:p%40ss@db:5433"
