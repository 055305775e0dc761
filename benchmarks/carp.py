"""Gaps to the published CARP optima over a folder of gdb or val instances.

The folder holds `gdb/*.dat`, `val/*.dat` and `carp_bks.csv` (instance,value,source), as
the repository's benchmarks/data/carp does. Costs count as the published ones: every
serviced edge plus every deadheading traversal; the fleet is unlimited (see
carp.solve_carp_instance).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rules.errors import InvalidInstance
from rules.routing.carp import solve_carp_instance
from rules.routing.carp_format import read_dat
from rules.routing.cvrplib import read_bks

SETS = ("gdb", "val")


@dataclass(frozen=True)
class GapRow:
    instance: str
    value: int
    bks: int | None
    gap_pct: float | None                # 100 (value - bks) / bks
    feasible: bool
    seconds: float


def summary(rows: list[GapRow], which: str, seconds: float) -> str:
    """One line: mean gap, optima hit, worst instance."""
    rated = [r for r in rows if r.gap_pct is not None]
    if not rated:
        return f"CARP {which}: no instance with a published value"
    gaps = [r.gap_pct for r in rated if r.gap_pct is not None]
    worst = max(rated, key=lambda r: r.gap_pct or 0.0)
    infeasible = sum(not r.feasible for r in rows)
    return (f"CARP {which}, {len(rated)} instances at {seconds:g} s each: mean gap {sum(gaps) / len(gaps):+.2f}%, "
            f"{sum(g <= 0 for g in gaps)} of {len(rated)} at the published optimum, worst {worst.instance} "
            f"{worst.gap_pct:+.2f}%" + (f", {infeasible} NOT feasible" if infeasible else ""))


def _natural(path: Path) -> tuple[str, int, str]:
    found = re.fullmatch(r"([a-z]+)(\d+)(.*)", path.stem)
    return (found.group(1), int(found.group(2)), found.group(3)) if found else (path.stem, 0, "")


def instance_files(folder: Path, which: str) -> tuple[list[Path], Path]:
    """The set's .dat files in natural order (gdb2 before gdb10) and the carp_bks.csv; clear error if absent."""
    files = sorted((folder / which).glob("*.dat"), key=_natural) if (folder / which).is_dir() else []
    bks_file = folder / "carp_bks.csv"
    if not files or not bks_file.is_file():
        raise InvalidInstance(f"no CARP instances under {folder / which} with {bks_file}", source=str(folder),
                              hint="pass --folder: a folder with gdb/*.dat, val/*.dat and carp_bks.csv, as "
                                   "benchmarks/data/carp in the repository")
    return files, bks_file


def carp_gaps(folder: Path, which: str, seconds: float, seed: int = 1,
              progress: Callable[[str], None] | None = None) -> list[GapRow]:
    """Solve every folder/<which>/*.dat for `seconds` and compare with folder/carp_bks.csv."""
    files, bks_file = instance_files(folder, which)
    best = read_bks(bks_file)
    rows = []
    for path in files:
        instance = read_dat(path)
        solution = solve_carp_instance(instance, seed=seed, time_limit_s=seconds)
        bks = best.get(instance.name)
        gap = None if bks is None else 100.0 * (solution.cost - bks) / bks
        row = GapRow(instance.name, solution.cost, bks, gap, solution.feasible, solution.seconds)
        rows.append(row)
        if progress is not None:
            progress(f"  {row.instance}: {row.value} (published {row.bks}, gap "
                     f"{'n/a' if gap is None else f'{gap:+.2f}%'}, {solution.vehicles} vehicles"
                     f"{'' if row.feasible else ', NOT feasible'})")
    return rows


def gdb_gaps(folder: Path, seconds: float, seed: int = 1,
             progress: Callable[[str], None] | None = None) -> list[GapRow]:
    """The gdb set (23 instances): folder/gdb/*.dat against folder/carp_bks.csv."""
    return carp_gaps(folder, "gdb", seconds, seed, progress)
