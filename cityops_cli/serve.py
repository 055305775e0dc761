"""`cityops api`: serve the operations API against the configured services."""

from __future__ import annotations

import argparse
from typing import Any

from cityops.periodic import stop_event_on_signals
from cityops.serve import fast_event_loop, http_server, serve_until_stopped
from cityops.services import database_for
from cityops.settings import Settings


def register(commands: argparse._SubParsersAction[Any]) -> None:
    api = commands.add_parser("api", help="serve the operations API and web pages",
                              description="Serve the operations API (FastAPI) with uvicorn.")
    api.add_argument("--host", help="address to listen on (default CITYOPS_API__HOST)")
    api.add_argument("--port", type=int, help="port (default CITYOPS_API__PORT)")
    api.set_defaults(handler=run_api, loop_factory=fast_event_loop())


async def run_api(args: argparse.Namespace, settings: Settings) -> int:
    from ops_api import create_app

    host = args.host or settings.api.host
    port = args.port or settings.api.port
    stop = stop_event_on_signals()
    async with database_for(settings) as db:
        print(f"CityOps API on http://{host}:{port}/ (docs at /docs); Ctrl-C stops it", flush=True)
        await serve_until_stopped(http_server(create_app(settings, db=db), host, port), stop)
    return 0
