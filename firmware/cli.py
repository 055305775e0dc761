"""The agent's command on a Pi: `python -m firmware --config FILE [--check]`.

    python -m firmware --config /etc/cityops-agent/agent.toml      one Pi, its sensors
    python -m firmware --config FILE --check                       read each sensor once, print, exit

`main` needs none of the platform's settings: a Pi imports the agent and the contract,
nothing of the server. `cityops agent` (cityops_cli/agent.py) offers the same, beside the
simulated fleet (`cityops agent simulate`, simulation/command.py).

The simulated fleet talks to CITYOPS_MQTT_URL (the embedded broker when unset), one
MQTT connection per simulated device (see simulation/fleet.py for why).
`--duration` is in simulated seconds; without it the fleet runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contract.errors import run_command
from contract.urls import redact_url
from firmware.agent import AgentSpec
from firmware.errors import AgentConfigError, SensorError


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the device's agent config (TOML; see deploy/agent/agent.example.toml)")
    parser.add_argument("--check", action="store_true",
                        help="read every configured sensor once, print what it gave, and exit")
    parser.set_defaults(handler=run_device)


def main(argv: Sequence[str] | None = None) -> int:
    """The agent on its own (`python -m firmware --config FILE [--check]`)."""
    parser = argparse.ArgumentParser(prog="python -m firmware",
                                     description="Run this device's agent from its config file.")
    add_device_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    return run_command(lambda: asyncio.run(run_device(args, None)))


async def until_signalled(main: asyncio.Future[Any]) -> None:
    """Run `main`; SIGTERM (systemd stop) cancels it, so it stops cleanly."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await main
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGTERM)


async def run_device(args: argparse.Namespace, settings: object = None) -> int:
    """`settings`: the platform's, when `cityops agent` runs it; the agent needs none."""
    from firmware.agent import Agent
    from firmware.config import build_spec, load_agent_config

    if args.config is None:
        raise AgentConfigError("`cityops agent` needs --config FILE (or use `cityops agent simulate`)")
    config = load_agent_config(args.config)
    spec = build_spec(config)
    if args.check:
        return _check_sensors(spec)
    print(f"agent {config.device_id} ({config.kind}) -> {redact_url(config.mqtt.url)}, "
          f"spool {spec.spool_path}")
    agent = Agent(spec)
    await until_signalled(asyncio.ensure_future(agent.run()))
    return 0


def _check_sensors(spec: AgentSpec) -> int:
    failed = 0
    for driver in spec.drivers():
        try:
            print(f"ok    {driver.name}: {driver.read()}")
        except SensorError as exc:
            failed += 1
            print(f"FAIL  {driver.name}: {type(exc).__name__}: {exc.cause}")
            if exc.hint:
                print(f"      hint: {exc.hint}")
        finally:
            driver.close()
    return 1 if failed else 0
