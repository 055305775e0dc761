"""`cityops agent` (and on a Pi `python -m firmware`): run one real device, or a simulated fleet.

    cityops agent --config /etc/cityops-agent/agent.toml          one Pi, its sensors
    cityops agent --config FILE --check                           read each sensor once, print, exit
    cityops agent simulate --homes 3 --roads 2 --bins 4 --gritters 1 --speed 60

`main` is the agent's own entry point: it needs none of the platform's settings, so a Pi
imports the agent and the contract, nothing of the server (`agent simulate` is the
platform's, through `cityops`).

The simulated fleet talks to CITYOPS_MQTT_URL (the embedded broker when unset), one
MQTT connection per simulated device (see firmware/simulate/fleet.py for why).
`--duration` is in simulated seconds; without it the fleet runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cityops.errors import CityOpsError
from cityops.urls import redact_url
from firmware.agent import AgentSpec
from firmware.errors import AgentConfigError, SensorError

if TYPE_CHECKING:
    from cityops.settings import Settings


def _device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the device's agent config (TOML; see deploy/agent/agent.example.toml)")
    parser.add_argument("--check", action="store_true",
                        help="read every configured sensor once, print what it gave, and exit")
    parser.set_defaults(handler=run_device)


def main(argv: Sequence[str] | None = None) -> int:
    """The agent on its own (`python -m firmware --config FILE [--check]`)."""
    parser = argparse.ArgumentParser(prog="python -m firmware",
                                     description="Run this device's agent from its config file.")
    _device_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        return asyncio.run(run_device(args, None))
    except CityOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def register(commands: argparse._SubParsersAction[Any]) -> None:
    agent = commands.add_parser(
        "agent", help="run the device agent: sensors, offline spool, MQTT publishing",
        description="Run one device agent from its config file, or a simulated fleet (`agent simulate`).")
    _device_arguments(agent)
    which = agent.add_subparsers(dest="agent_command", metavar="ACTION")
    sim = which.add_parser("simulate", help="run a fleet of simulated devices in this process",
                           description="Simulated homes, road sites, bins and gritters publishing to the "
                                       "platform's broker (CITYOPS_MQTT_URL, or the embedded one).")
    for kind, text in (("homes", "damp boxes in homes"), ("roads", "roadside surface sensors"),
                       ("bins", "bin fill sensors"), ("gritters", "gritters with a GPS")):
        sim.add_argument(f"--{kind}", type=_count, default=0, metavar="N", help=f"{text} (default 0)")
    sim.add_argument("--speed", type=_positive, default=60.0, metavar="X",
                     help="simulated seconds per real second (default 60)")
    sim.add_argument("--seed", type=int, default=1, help="same seed, same readings (default 1)")
    sim.add_argument("--duration", type=_count, default=None, metavar="S",
                     help="simulated seconds to run, then send what is left and stop (default: until Ctrl-C)")
    sim.add_argument("--start", type=_utc, default=None, metavar="ISO",
                     help="simulated start time, e.g. 2026-01-05T00:00:00Z (default: now)")
    sim.add_argument("--prefix", default="sim-", help="device id prefix (default sim-)")
    sim.add_argument("--mqtt-url", default=None,
                     help="broker URL (default: CITYOPS_MQTT_URL, else the embedded broker)")
    sim.add_argument("--spool-dir", type=Path, default=None,
                     help="where the devices' spools live (default: a temporary directory)")
    sim.add_argument("--batch-max", type=int, default=200, metavar="N",
                     help="readings per message at most (default 200)")
    sim.add_argument("--rate", type=_positive, default=None, metavar="R",
                     help="messages per second per device at most (default: speed / 60, at least 2)")
    sim.set_defaults(handler=run_simulate)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _utc(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _until_signalled(main: asyncio.Future[Any]) -> None:
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


async def run_device(args: argparse.Namespace, settings: Settings | None) -> int:
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
    await _until_signalled(asyncio.ensure_future(agent.run()))
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


async def run_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from firmware.link import MqttOptions
    from firmware.simulate.fleet import FleetPlan, build_fleet, run_fleet

    start = args.start or datetime.now(UTC).replace(second=0, microsecond=0)
    plan = FleetPlan(args.homes, args.roads, args.bins, args.gritters, seed=args.seed, speed=args.speed,
                     start=start, prefix=args.prefix, batch_max=args.batch_max, rate=args.rate)
    if plan.size == 0:
        print("nothing to simulate: give --homes, --roads, --bins and/or --gritters")
        return 2
    url = args.mqtt_url or settings.resolved_mqtt_url()
    until = start + timedelta(seconds=args.duration) if args.duration is not None else None
    with contextlib.ExitStack() as stack:
        spool_dir = args.spool_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sim")))
        specs = build_fleet(plan, MqttOptions.from_url(url), spool_dir)
        print(f"simulating {plan.homes} homes, {plan.roads} roads, {plan.bins} bins, {plan.gritters} "
              f"gritters at {plan.speed:g}x from {start:%Y-%m-%d %H:%M} UTC (seed {plan.seed}) "
              f"-> {redact_url(url)}")
        await _until_signalled(asyncio.ensure_future(run_fleet(specs, until)))
    return 0
