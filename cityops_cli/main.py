"""The `cityops` command: one entry point, a subcommand per part of the platform.

This is the composition root, the one place that knows every package: each subcommand
lives in the package that owns it and is named in COMMANDS below. Only the command that
runs is imported (`cityops agent --check` loads the agent, not FastAPI or PyVRP); the full
list is built for `cityops --help` and for a command it does not know. Errors the
platform raises on purpose print as `error:` and `hint:` lines (exit 1); wrong usage is
argparse's message (exit 2); Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence

from cityops import __version__
from cityops.settings import get_settings
from contract.errors import run_command

# command -> the module whose register(commands) adds it, in the order `--help` lists them
COMMANDS: dict[str, str] = {
    "demo": "democity.command",
    "db": "cityops_cli.db",
    "pki": "cityops_cli.pki",
    "api": "cityops_cli.serve",
    "bench": "cityops_cli.bench",
    "ingest": "ingest.cli",
    "lorawan": "ingest.lorawan.cli",
    "agent": "cityops_cli.agent",
    "rules": "pipelines.cli",
    "route": "benchmarks.route",
    "roads": "pipelines.gritting.cli",
    "bins": "pipelines.bins.cli",
    "damp": "pipelines.damp.cli",
    "cases": "cases.cli",
    "device": "devices.cli",
    "nats": "devices.nats_cli",
    "user": "ops_api.accounts.cli",
    "release": "devices.releases.cli",
    "alerts": "alerts.cli",
    "dashboards": "dashboards.cli",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n(run `{self.prog} --help` for the commands)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or with `only` that one (importing nothing else)."""
    parser = _Parser(
        prog="cityops",
        description="CityOps: damp boxes, road and bin sensors, gritting and waste routes for a council.",
        epilog="Settings come from CITYOPS_* environment variables or a .env file; see README.md.",
    )
    parser.add_argument("--version", action="version", version=f"cityops {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).register(commands)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named by the first word that is not an option, when it is one we know."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_in(words))
    args = parser.parse_args(words)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2

    def body() -> int:
        settings = get_settings()
        logging.basicConfig(level=settings.log_level,
                            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        # a command may ask for a faster event loop (the API: uvloop); the rest use asyncio's
        with asyncio.Runner(loop_factory=getattr(args, "loop_factory", None)) as runner:
            code: int = runner.run(args.handler(args, settings))
            return code

    return run_command(body)
