"""The services' database roles (migration 0023): their names, and LOGIN with passwords.

The migration creates one NOLOGIN role per service and grants it exactly what the service
uses; giving a role a login is a deployment's decision, made with `cityops db roles`
(prints the statements) or `cityops db roles --apply` (runs them as the owner). Passwords
go to the server as SCRAM-SHA-256 verifiers computed here, so neither the printed
statements nor the server's statement log hold them in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import SecretStr

from cityops.errors import ConfigError
from cityops.storage.database import Connection

SERVICES = ("ingest", "api", "rules", "alerts", "releases", "grafana")
SCRAM_ITERATIONS = 4096


async def service_roles(conn: Connection) -> dict[str, str]:
    """service -> role name, as migration 0023 recorded them in this database."""
    if not await conn.fetchval("SELECT to_regclass('db_roles') IS NOT NULL"):
        raise ConfigError("this database has no service roles yet", hint="run `cityops db migrate` first")
    rows = await conn.fetch("SELECT service, role_name FROM db_roles ORDER BY service")
    return {r["service"]: r["role_name"] for r in rows}


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677), as psql's \\password sends it."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def login_statements(roles: dict[str, str], passwords: dict[str, SecretStr]) -> list[str]:
    """ALTER ROLE ... LOGIN [PASSWORD verifier] for each role; without a password, LOGIN alone
    (for certificate or peer authentication)."""
    unknown = sorted(set(passwords) - set(roles))
    if unknown:
        raise ConfigError(f"CITYOPS_STORAGE__ROLE_PASSWORDS names unknown services {unknown}",
                          hint=f"the services are {', '.join(sorted(roles))}")
    statements = []
    for service, role in sorted(roles.items()):
        secret = passwords.get(service)
        password = f" PASSWORD '{scram_verifier(secret.get_secret_value())}'" if secret else ""
        statements.append(f'ALTER ROLE "{role}" LOGIN{password};')
    return statements


async def apply_logins(conn: Connection, statements: list[str]) -> None:
    async with conn.transaction():
        for statement in statements:
            await conn.execute(statement)


def role_url(url: str, role: str, password: str | None = None) -> str:
    """`url` with its user (and password) replaced: how a service connects as its role."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = quote(role, safe="") + (f":{quote(password, safe='')}" if password else "") + "@" + host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
