"""`cityops route ...`: the solver against published routing instances, from the command line.

    cityops route cvrp FILE.vrp [--time-limit S] [--seed N] [--bks bks.csv]
        solve a CVRPLIB instance; print the cost, and the best-known value and the gap
        when a bks.csv is given or found beside the file (or its folder's parent), or
        the file's COMMENT carries the optimal value
    cityops route carp FILE.dat [--time-limit S] [--seed N] [--iterations N] [--bks carp_bks.csv]
        solve a CARP instance (gdb/val/egl .dat); print the cost, trips, feasibility, and the
        gap to the published value from a carp_bks.csv given or found beside the file or one up
    cityops route carp-bench [--folder DIR] [--set gdb|val] [--seconds S] [--seed N]
        every instance of a set against the published optima; the mean gap
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks import carp as carp_bench
from cityops.settings import Settings
from rules.routing.carp import solve_carp_instance
from rules.routing.carp_format import best_known as carp_best_known
from rules.routing.carp_format import read_dat
from rules.routing.cvrplib import best_known, read_vrp, solve_cvrp

# The gdb and val instances kept in the repository (benchmarks/data/README.md), found from this
# file rather than the working directory.
CARP_FOLDER = Path(__file__).resolve().parent / "data" / "carp"


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
    carp = which.add_parser("carp", help="solve a CARP .dat instance (gdb, val) and print its cost",
                            description="Solve a capacitated arc routing instance (CARPLIB .dat: gdb, val, egl) "
                                        "with an unlimited fleet, and compare the cost (service plus deadheading) "
                                        "with the published optimum when a carp_bks.csv is known.")
    carp.add_argument("file", type=Path, metavar="FILE.dat")
    carp.add_argument("--time-limit", type=float, default=10.0, metavar="S", help="seconds to search (default 10)")
    carp.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    carp.add_argument("--iterations", type=int, metavar="N",
                      help="also stop after N iterations (repeatable under a seed if reached first)")
    carp.add_argument("--bks", type=Path, metavar="CSV", help="a carp_bks.csv (instance,value,...); "
                      "default: carp_bks.csv beside the file or one folder up")
    carp.set_defaults(handler=run_carp)
    bench = which.add_parser("carp-bench", help="gaps to the published CARP optima over the gdb or val set",
                             description="Solve every instance of a CARP set and print each gap to the "
                                         "published optimum and the mean gap.")
    bench.add_argument("--folder", type=Path, default=CARP_FOLDER,
                       help="a folder with gdb/, val/ and carp_bks.csv "
                            "(default benchmarks/data/carp in the repository)")
    bench.add_argument("--set", dest="which", choices=carp_bench.SETS, default="gdb", help="default gdb")
    bench.add_argument("--seconds", type=float, default=10.0, help="seconds per instance (default 10)")
    bench.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    bench.set_defaults(handler=run_carp_bench)


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


async def run_carp(args: argparse.Namespace, settings: Settings) -> int:
    instance = read_dat(args.file)
    best = carp_best_known(instance, args.file, args.bks)
    result = solve_carp_instance(instance, seed=args.seed, time_limit_s=args.time_limit,
                                 max_iterations=args.iterations)
    print(f"{instance.name}: cost {result.cost} in {result.trips} trips ({result.vehicles} vehicles; the file says "
          f"{instance.vehicles}), {'feasible' if result.feasible else 'NOT feasible'}, {result.seconds:.1f} s, "
          f"seed {args.seed}")
    if best is not None:
        print(f"published {best}: gap {100.0 * (result.cost - best) / best:+.2f}%")
    return 0


async def run_carp_bench(args: argparse.Namespace, settings: Settings) -> int:
    files = len(carp_bench.instance_files(args.folder, args.which)[0])
    print(f"CARP {args.which}: {files} instances at {args.seconds:g} s each "
          f"(about {files * args.seconds / 60:.0f} min)", flush=True)
    rows = carp_bench.carp_gaps(args.folder, args.which, args.seconds, args.seed,
                                progress=lambda line: print(line, flush=True))
    print(carp_bench.summary(rows, args.which, args.seconds))
    return 0
