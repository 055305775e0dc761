"""`python -m firmware.update.run --config FILE`: the agent process the launcher starts.

The same agent as `cityops agent --config FILE`, plus updates (see agent.py). It imports
only the agent's own modules, so it runs from a slim release. Exit codes: 0 stopped
(SIGTERM), 1 an error (printed as error:/hint:), 75 switch to the version just installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from contract.errors import run_command
from firmware import __version__
from firmware.config import build_spec, load_agent_config
from firmware.update.agent import UpdatingAgent
from firmware.update.config import UpdateConfig
from firmware.update.layout import SWITCH_EXIT, VERSION_ENV, Layout


def running_version() -> str:
    return os.environ.get(VERSION_ENV) or __version__


async def run(config_path: Path) -> int:
    config = load_agent_config(config_path)
    update = config.update or UpdateConfig()
    spec = build_spec(config)
    agent = UpdatingAgent(spec, Layout(update.root), running_version(),
                          public_key=update.public_key, base_url=update.base_url, allow_http=update.allow_http,
                          ca_file=Path(update.ca_file) if update.ca_file else spec.mqtt.ca_file,
                          reserve_bytes=int(update.reserve_mb * 1e6))
    main = asyncio.ensure_future(agent.run())
    agent.on_switch = main.cancel
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, main.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await main
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
    return SWITCH_EXIT if agent.switch_requested else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.update.run",
                                     description="Run the device agent with fleet updates (started by the launcher).")
    parser.add_argument("--config", type=Path, required=True, help="the agent config (TOML)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("CITYOPS_LOG_LEVEL", "INFO"),
                        format=f"%(asctime)s %(levelname)-7s [{running_version()}] %(name)s: %(message)s")
    return run_command(lambda: asyncio.run(run(args.config)))


if __name__ == "__main__":
    sys.exit(main())
