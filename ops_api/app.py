"""The FastAPI application: resources opened in the lifespan, routes split by resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from cityops import __version__
from cityops.errors import CityOpsError, DatabaseUnavailable, StorageError
from cityops.settings import Settings
from cityops.storage import Database
from ops_api import pages
from ops_api.errors import ApiError, invalid_input
from ops_api.routes import (
    admin_devices,
    alerts,
    auth,
    bins,
    devices,
    gritting,
    health,
    households,
    jobs,
    open_data,
    readings,
    releases,
    users,
)


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
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(admin_devices.router)
    for resource in (devices, readings, households, gritting, bins, jobs, alerts, open_data):
        app.include_router(resource.router)
    app.add_exception_handler(CityOpsError, _domain_error)  # type: ignore[arg-type]
    return app


async def _domain_error(request: Request, exc: CityOpsError) -> JSONResponse:
    """The one place domain errors become HTTP errors."""
    if isinstance(exc, StorageError):
        exc = invalid_input(exc) or exc
    if isinstance(exc, ApiError):
        return JSONResponse({"error": str(exc), "hint": exc.hint}, status_code=exc.status, headers=exc.headers)
    status = 503 if isinstance(exc, DatabaseUnavailable | StorageError) else 400
    return JSONResponse({"error": str(exc), "hint": exc.hint}, status_code=status)
