"""The FastAPI application: resources opened in the lifespan, routes split by resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cityops import __version__
from cityops.errors import CityOpsError, DatabaseUnavailable, StorageError
from cityops.settings import Settings
from cityops.storage import Database
from ops_api.routes import health, releases


def create_app(settings: Settings, *, db: Database | None = None,
               mqtt_url: str | None = None) -> FastAPI:
    """The app for these settings. Given an open `db` (the CLI opens it first, to fail
    fast with a clear message), the app uses it and leaves closing it to the caller."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if db is not None:
            app.state.db = db
            yield
            return
        async with Database.connect(settings.resolved_database_url(), settings.storage) as own:
            app.state.db = own
            yield

    app = FastAPI(title="CityOps operations API", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.mqtt_url = mqtt_url or settings.resolved_mqtt_url()
    app.include_router(health.router)
    app.include_router(releases.router)
    app.add_exception_handler(CityOpsError, _domain_error)  # type: ignore[arg-type]
    return app


async def _domain_error(request: Request, exc: CityOpsError) -> JSONResponse:
    """The one place domain errors become HTTP errors."""
    status = 503 if isinstance(exc, DatabaseUnavailable | StorageError) else 400
    return JSONResponse({"error": str(exc), "hint": exc.hint}, status_code=status)
