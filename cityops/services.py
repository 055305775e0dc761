"""Reaching the database and broker the settings name, embedded ones included.

With CITYOPS_DATABASE_URL unset, a command talks to the embedded PostgreSQL: the one a
running `cityops demo` already serves, or one it starts for the length of the command.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cityops.embedded.postgres import EmbeddedPostgres
from cityops.embedded.process import accepts_connections
from cityops.settings import Settings
from cityops.storage import Database

log = logging.getLogger("cityops.services")


def embedded_postgres(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.embedded.data_dir, settings.embedded.postgres_port)


@asynccontextmanager
async def database_for(settings: Settings) -> AsyncIterator[Database]:
    """A Database for the settings, starting the embedded server if nothing serves it yet."""
    if not settings.uses_embedded_database:
        async with Database.connect(settings.resolved_database_url(), settings.storage) as db:
            yield db
        return
    server = embedded_postgres(settings)
    started = False
    if not accepts_connections(settings.embedded.postgres_port):
        log.info("starting the embedded PostgreSQL for this command")
        await server.start()
        started = True
    try:
        async with Database.connect(server.url, settings.storage) as db:
            yield db
    finally:
        if started:
            await server.stop()
