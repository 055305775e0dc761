"""The FastAPI application: resources opened in the lifespan, routes split by resource, and
in front of every route (outermost first) the trusted-proxy headers, the body size limit and
the cross-site guard (ops_api.clientinfo, ops_api.guards)."""

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
from ops_api.clientinfo import ProxyHeaders, TrustedProxies
from ops_api.errors import ApiError, as_api_error, as_response, invalid_input
from ops_api.guards import BodyLimit, CrossSite
from ops_api.healthcheck import HealthCache, platform_probe
from ops_api.routes import (
    admin_devices,
    alerts,
    auth,
    basemap,
    bins,
    cases,
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
            _open(app, db)
            yield
            return
        async with Database.connect(settings.resolved_database_url(), settings.storage) as own:
            _open(app, own)
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
    for resource in (devices, readings, households, gritting, bins, jobs, cases, alerts, open_data, basemap):
        app.include_router(resource.router)
    app.add_exception_handler(CityOpsError, _domain_error)  # type: ignore[arg-type]
    api = settings.api
    app.add_middleware(CrossSite, allowed_origins=[settings.accounts.public_base_url, *api.allowed_origins])
    app.add_middleware(BodyLimit, limit=api.max_body_bytes, small_limit=api.anonymous_max_body_bytes,
                       small_paths=ANONYMOUS_BODIES,
                       path_limits={households.REPORT_PATH: households.report_body_limit(settings.cases)})
    app.add_middleware(ProxyHeaders, trusted=TrustedProxies.parse(api.trusted_proxies))  # outermost
    return app


# The routes that take a body from anyone, signed in or not: the smaller body limit.
ANONYMOUS_BODIES = ("/auth/login", "/auth/invitations/accept")


def _open(app: FastAPI, db: Database) -> None:
    app.state.db = db
    app.state.health = HealthCache(platform_probe(db, app.state.mqtt_url), app.state.settings.api.health_cache_s)


async def _domain_error(request: Request, exc: CityOpsError) -> JSONResponse:
    """The one place domain errors become HTTP errors."""
    if isinstance(exc, StorageError):
        exc = invalid_input(exc) or exc
    exc = as_api_error(exc) or exc
    if isinstance(exc, ApiError):
        return as_response(exc)
    status = 503 if isinstance(exc, DatabaseUnavailable | StorageError) else 400
    return JSONResponse({"error": str(exc), "hint": exc.hint}, status_code=status)
