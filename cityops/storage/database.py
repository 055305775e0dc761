"""The asyncpg pool and what the server is: the only place that opens connections.

Open it in a lifespan or `async with Database.connect(...)`, never at import. asyncpg's
errors are translated here into `StorageError`s with a one-line hint.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from cityops.errors import DatabaseUnavailable, StorageError
from cityops.settings import Settings, StorageSettings, redact_url

log = logging.getLogger("cityops.storage")


class _PooledConnection(asyncpg.Connection):
    """No reset query when a connection goes back to the pool: asyncpg's default (unlock
    advisory locks, close cursors, unlisten, RESET ALL) costs a round trip on every
    `db.fetch`. The platform leaves no session state behind: settings are SET LOCAL inside
    transactions, cursors live in transactions, nothing LISTENs, and the one advisory lock
    (migrations) is released in a `finally`. An open transaction is still rolled back."""

    def get_reset_query(self) -> str:
        return ""

# A connection of our own or one lent by the pool: both run queries the same way.
Connection = asyncpg.Connection | PoolConnectionProxy

CLOSE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Backend:
    """What the server offers: TimescaleDB (production) or plain PostgreSQL."""

    server_version: str
    timescale_version: str | None  # installed in this database
    timescale_available: bool      # installable here (pg_available_extensions)

    @property
    def is_timescale(self) -> bool:
        return self.timescale_version is not None

    def describe(self) -> str:
        if self.timescale_version:
            return f"TimescaleDB {self.timescale_version} on PostgreSQL {self.server_version}"
        return f"plain PostgreSQL {self.server_version}"


async def read_backend(conn: Connection) -> Backend:
    row = await conn.fetchrow(
        """
        SELECT current_setting('server_version') AS server_version,
               (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS ts_version,
               EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS ts_available
        """
    )
    assert row is not None
    return Backend(
        server_version=row["server_version"].split()[0],
        timescale_version=row["ts_version"],
        timescale_available=row["ts_available"],
    )


class Database:
    """A connection pool plus the back end it talks to."""

    def __init__(self, pool: asyncpg.Pool, url: str):
        self.pool = pool
        self.url = url
        self._backend: Backend | None = None

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, storage: StorageSettings | None = None) -> AsyncIterator[Database]:
        db = await cls.open(url, storage)
        try:
            yield db
        finally:
            await db.close()

    @classmethod
    async def open(cls, url: str, storage: StorageSettings | None = None) -> Database:
        storage = storage or StorageSettings()
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min(storage.pool_min_size, storage.pool_max_size),
                max_size=storage.pool_max_size,
                timeout=storage.connect_timeout_s,
                command_timeout=None,
                connection_class=_PooledConnection,
            )
        except Exception as exc:  # translated: every connect failure gets one line and a hint
            raise translate_connect_error(exc, url) from None
        assert pool is not None
        return cls(pool, url)

    async def close(self) -> None:
        """Close gracefully; if a server does not answer Terminate in time, cut the sockets."""
        try:
            await asyncio.wait_for(self.pool.close(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("pool did not close within %.0f s; terminating connections", CLOSE_TIMEOUT_S)
            self.pool.terminate()

    async def backend(self, *, refresh: bool = False) -> Backend:
        if self._backend is None or refresh:
            async with self.pool.acquire() as conn:
                self._backend = await read_backend(conn)
        return self._backend

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection inside a transaction; every failure comes out as a StorageError."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield conn
        except DB_ERRORS as exc:
            raise translate_query_error(exc) from exc

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await self.pool.fetch(query, *args)
        except DB_ERRORS as exc:
            raise translate_query_error(exc) from exc

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        try:
            return await self.pool.fetchrow(query, *args)
        except DB_ERRORS as exc:
            raise translate_query_error(exc) from exc

    async def fetchval(self, query: str, *args: Any) -> Any:
        try:
            return await self.pool.fetchval(query, *args)
        except DB_ERRORS as exc:
            raise translate_query_error(exc) from exc

    async def execute(self, query: str, *args: Any) -> str:
        try:
            return await self.pool.execute(query, *args)
        except DB_ERRORS as exc:
            raise translate_query_error(exc) from exc


# What a query can raise: the server's errors, and a connection that broke or never came.
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def translate_query_error(exc: BaseException) -> StorageError:
    if isinstance(exc, asyncpg.PostgresError):
        return StorageError(f"database error: {exc}", sqlstate=exc.sqlstate)
    return StorageError(f"lost the database connection: {type(exc).__name__}: {exc}")


def translate_connect_error(exc: BaseException, url: str) -> DatabaseUnavailable:
    """One line that says why a connection failed, with the URL's password hidden."""
    where = redact_url(url)
    if isinstance(exc, asyncpg.InvalidPasswordError):
        why = "password authentication failed"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        why = f"the database does not exist ({exc})"
        return DatabaseUnavailable(f"cannot connect to {where}: {why}",
                                   hint="create it (createdb NAME) or fix the name in CITYOPS_DATABASE_URL")
    elif isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        why = f"the server refused the role ({exc})"
    elif isinstance(exc, socket.gaierror):
        why = "the host name does not resolve"
    elif isinstance(exc, ssl.SSLCertVerificationError):  # an OSError too: before the next branch
        return DatabaseUnavailable(
            f"cannot connect to {where}: the server's certificate did not verify ({exc.verify_message})",
            hint="sslrootcert= must be the CA that signed the server's certificate, and the URL's host "
                 "a name or address on that certificate")
    elif isinstance(exc, ssl.SSLError):
        why = f"the TLS handshake failed ({exc.reason or exc})"
    elif isinstance(exc, ConnectionRefusedError | OSError) and not isinstance(exc, TimeoutError):
        why = "nothing is listening there (connection refused)"
    elif isinstance(exc, TimeoutError):
        why = "the server did not answer in time"
    elif isinstance(exc, asyncpg.PostgresError):
        why = str(exc)
    else:
        why = f"{type(exc).__name__}: {exc}"
    return DatabaseUnavailable(f"cannot connect to {where}: {why}")


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The database the settings name (the embedded one when CITYOPS_DATABASE_URL is unset)."""
    async with Database.connect(settings.resolved_database_url(), settings.storage) as db:
        yield db
