"""`cityops route ...`: routing problems from the command line.

    cityops route cvrp FILE.vrp [--time-limit S] [--seed N] [--bks bks.csv]
        solve a CVRPLIB instance; print the cost, and the best-known value and the gap
        when a bks.csv is given or found beside the file (or its folder's parent), or
        the file's COMMENT carries the optimal value
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cityops.settings import Settings
from rules.routing.cvrplib import best_known, read_vrp, solve_cvrp


def register(commands: argparse._SubParsersAction[Any]) -> None:
    route = commands.add_parser("route", help="solve routing problems: bin collection, CVRPLIB benchmarks",
                                description="Routing problems (PyVRP).")
    which = route.add_subparsers(dest="route_command", metavar="ACTION", required=True)
    cvrp = which.add_parser("cvrp", help="solve a CVRPLIB .vrp instance and print its cost",
                            description="Solve a CVRPLIB instance (EUC_2D, unlimited fleet) and compare the cost "
                                        "with the best-known value when one is known.")
    cvrp.add_argument("file", type=Path, metavar="FILE.vrp")
    cvrp.add_argument("--time-limit", type=float, default=10.0, metavar="S", help="seconds to search (default 10)")
    cvrp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    cvrp.add_argument("--bks", type=Path, metavar="CSV", help="a bks.csv (instance,value,...); "
                      "default: bks.csv beside the file or one folder up")
    cvrp.set_defaults(handler=run_cvrp)


async def run_cvrp(args: argparse.Namespace, settings: Settings) -> int:
    instance = read_vrp(args.file)
    result = solve_cvrp(instance, time_limit_s=args.time_limit, seed=args.seed)
    print(f"{instance.name}: cost {result.cost} with {result.routes} routes "
          f"({'feasible' if result.feasible else 'NOT feasible'}, {result.seconds:.1f} s, seed {args.seed})")
    best = best_known(instance, args.file, args.bks)
    gap = result.gap(best)
    if best is not None and gap is not None:
        print(f"best-known {best}: gap {gap:+.2%}")
    return 0
