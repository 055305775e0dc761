"""The `cityops` command: one entry point, a subcommand per part of the platform.

Each subcommand lives in the module that owns it and is registered here. Errors the
platform raises on purpose print as `error:` and `hint:` lines (exit 1); wrong usage is
argparse's message (exit 2); Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from cityops import __version__
from cityops.errors import CityOpsError
from cityops.settings import get_settings


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n(run `{self.prog} --help` for the commands)\n")


def build_parser() -> argparse.ArgumentParser:
    from alerts import cli as alerts_cli
    from cityops import bench, dbcli, demo, pkicli, servecli
    from cityops.democity import soak
    from dashboards import cli as dashboards_cli
    from devices import cli as devices_cli
    from devices.releases import cli as releases_cli
    from firmware import cli as agent_cli
    from ingest import bench as ingest_bench
    from ingest import cli as ingest_cli
    from ops_api import bench as api_bench
    from ops_api.accounts import cli as accounts_cli
    from rules import bench as rules_bench
    from rules import bins_cli, roads_cli
    from rules import cli as rules_cli
    from rules.routing import cli as routing_cli

    parser = _Parser(
        prog="cityops",
        description="CityOps: damp boxes, road and bin sensors, gritting and waste routes for a council.",
        epilog="Settings come from CITYOPS_* environment variables or a .env file; see README.md.",
    )
    parser.add_argument("--version", action="version", version=f"cityops {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo.register(commands)
    dbcli.register(commands)
    pkicli.register(commands)
    servecli.register(commands)
    benchmarks = bench.register(commands)
    ingest_cli.register(commands)
    ingest_bench.register_bench(benchmarks)
    soak.register_bench(benchmarks)
    agent_cli.register(commands)
    rules_cli.register(commands)
    rules_bench.register_bench(benchmarks)
    api_bench.register_bench(benchmarks)
    routing_cli.register(commands)
    roads_cli.register(commands)
    bins_cli.register(commands)
    devices_cli.register(commands)
    accounts_cli.register(commands)
    releases_cli.register(commands)
    alerts_cli.register(commands)
    dashboards_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        settings = get_settings()
        logging.basicConfig(level=settings.log_level,
                            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        # a command may ask for a faster event loop (the API: uvloop); the rest use asyncio's
        with asyncio.Runner(loop_factory=getattr(args, "loop_factory", None)) as runner:
            return runner.run(args.handler(args, settings))
    except CityOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
