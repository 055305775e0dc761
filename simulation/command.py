"""`cityops agent simulate`: a fleet of simulated devices in this process, deterministic
under `--seed`, publishing to CITYOPS_MQTT_URL (the embedded broker when unset), one MQTT
connection per simulated device (see fleet.py for why). `--duration` is in simulated
seconds; without it the fleet runs until Ctrl-C.

    cityops agent simulate --homes 3 --roads 2 --bins 4 --gritters 1 --speed 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityops.settings import Settings
from cityops.times import utc_argument
from contract.urls import redact_url
from firmware.cli import until_signalled


def add_simulate(actions: argparse._SubParsersAction[Any]) -> None:
    sim = actions.add_parser("simulate", help="run a fleet of simulated devices in this process",
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
    sim.add_argument("--start", type=utc_argument, default=None, metavar="ISO",
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


async def run_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from firmware.link import MqttOptions
    from simulation.fleet import FleetPlan, build_fleet, run_fleet

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
        await until_signalled(asyncio.ensure_future(run_fleet(specs, until)))
    return 0
