"""`cityops agent`: the device agent (firmware/) and, beside it, a simulated fleet
(simulation/): the one place where the two meet.

    cityops agent --config FILE [--check]          the agent, as `python -m firmware` runs it
    cityops agent simulate --homes 3 --speed 60    simulated devices (docs/agent.md)
"""

from __future__ import annotations

import argparse
from typing import Any

from firmware.cli import add_device_arguments
from simulation.command import add_simulate


def register(commands: argparse._SubParsersAction[Any]) -> None:
    agent = commands.add_parser(
        "agent", help="run the device agent: sensors, offline spool, MQTT publishing",
        description="Run one device agent from its config file, or a simulated fleet (`agent simulate`).")
    add_device_arguments(agent)
    add_simulate(agent.add_subparsers(dest="agent_command", metavar="ACTION"))
