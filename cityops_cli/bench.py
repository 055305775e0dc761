"""`cityops bench ...`: the benchmarks, each registered by the module that runs it.

Only `cityops bench` imports them; production code never does (benchmarks/, and the
bench modules the services still hold until they move there).
"""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: argparse._SubParsersAction[Any]) -> None:
    from benchmarks import api as api_bench
    from benchmarks import bins_roads, write
    from benchmarks import ingest as ingest_bench
    from benchmarks import lorawan as lorawan_bench
    from benchmarks import pages as pages_bench
    from benchmarks import rules as rules_bench
    from democity import soak

    bench = commands.add_parser("bench", help="measure the platform's speed on this machine",
                                description="Benchmarks. Each prints its numbers and the settings used.")
    which = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    write.register_bench(which)
    ingest_bench.register_bench(which)
    lorawan_bench.register_bench(which)
    soak.register_bench(which)
    rules_bench.register_bench(which)
    api_bench.register_bench(which)
    pages_bench.register_bench(which)
    bins_roads.register_bench(which)
