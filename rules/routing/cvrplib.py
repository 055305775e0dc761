"""CVRPLIB `.vrp` files (TSPLIB format, EUC_2D) and their best-known values, solved with PyVRP.

Header lines are split on the first ':' and stripped; data lines on any whitespace (the A
files have trailing spaces, the X files tabs and CRLF). Distances are nint(euclidean), as
every published value uses; the fleet is unlimited (CVRPLIB's convention).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyvrp

from rules.errors import InvalidInstance
from rules.routing import solver

SECTIONS = ("NODE_COORD_SECTION", "DEMAND_SECTION", "DEPOT_SECTION")
_OPTIMAL = re.compile(r"(?:Optimal|Best) value:\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class CvrpInstance:
    name: str
    capacity: int
    coords: npt.NDArray[np.float64]      # (n, 2), depot first
    demands: npt.NDArray[np.int64]       # (n,), depot 0
    comment: str = ""

    @property
    def value_in_comment(self) -> int | None:
        found = _OPTIMAL.search(self.comment)
        return int(found.group(1)) if found else None

    def distances(self) -> npt.NDArray[np.int64]:
        delta = self.coords[:, None, :] - self.coords[None, :, :]
        return np.floor(np.sqrt((delta ** 2).sum(axis=2)) + 0.5).astype(np.int64)


def read_vrp(path: Path) -> CvrpInstance:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInstance(f"cannot read {path}: {exc.strerror}", source=source) from exc
    header: dict[str, str] = {}
    sections: dict[str, list[list[str]]] = {name: [] for name in SECTIONS}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line == "EOF":
            continue
        if line in SECTIONS:
            current = line
        elif current is None and ":" in line:
            key, value = line.split(":", 1)
            header[key.strip().upper()] = value.strip()
        elif current is not None:
            sections[current].append(line.split())
        else:
            raise InvalidInstance(f"{path.name}: unexpected line {line!r}", source=source)
    return _instance(header, sections, source)


def _instance(header: dict[str, str], sections: dict[str, list[list[str]]], source: str) -> CvrpInstance:
    for key in ("DIMENSION", "CAPACITY"):
        if key not in header:
            raise InvalidInstance(f"{source}: no {key} line", source=source)
    if header.get("EDGE_WEIGHT_TYPE", "EUC_2D") != "EUC_2D":
        raise InvalidInstance(f"{source}: only EUC_2D distances are supported, not {header['EDGE_WEIGHT_TYPE']}",
                              source=source)
    try:
        size, capacity = int(header["DIMENSION"]), int(header["CAPACITY"])
        coords = np.array([[float(x), float(y)] for _, x, y in sections["NODE_COORD_SECTION"]])
        demands = np.array([int(q) for _, q in sections["DEMAND_SECTION"]], dtype=np.int64)
        depots = [int(row[0]) for row in sections["DEPOT_SECTION"] if row[0] != "-1"]
    except ValueError as exc:
        raise InvalidInstance(f"{source}: a malformed number or line ({exc})", source=source) from exc
    if len(coords) != size or len(demands) != size:
        raise InvalidInstance(f"{source}: DIMENSION is {size} but there are {len(coords)} coordinates "
                              f"and {len(demands)} demands", source=source)
    if depots != [1]:
        raise InvalidInstance(f"{source}: the depot must be node 1, got {depots}", source=source)
    if capacity <= 0 or demands.max() > capacity:
        raise InvalidInstance(f"{source}: a demand of {demands.max()} exceeds the capacity {capacity}",
                              source=source)
    return CvrpInstance(header.get("NAME", Path(source).stem), capacity, coords, demands,
                        header.get("COMMENT", ""))


def read_bks(path: Path) -> dict[str, int]:
    """instance -> best-known value from a bks.csv (instance,value,source)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["instance"]: int(row["value"]) for row in csv.DictReader(handle)}


def best_known(instance: CvrpInstance, vrp_path: Path, bks_path: Path | None = None) -> int | None:
    """From a bks.csv given or found beside the file (or one folder up), else the file's COMMENT."""
    candidates = [bks_path] if bks_path else [vrp_path.parent / "bks.csv", vrp_path.parent.parent / "bks.csv"]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            value = read_bks(candidate).get(instance.name)
            if value is not None:
                return value
    return instance.value_in_comment


def problem_data(instance: CvrpInstance) -> pyvrp.ProblemData:
    n = len(instance.demands)
    locations = [pyvrp.Location(x=int(x), y=int(y)) for x, y in instance.coords]
    clients = [pyvrp.Client(location=i, delivery=[int(instance.demands[i])]) for i in range(1, n)]
    fleet = pyvrp.VehicleType(num_available=n - 1, capacity=[instance.capacity])
    matrix = instance.distances()
    return solver.problem_data(locations, clients, fleet, matrix, matrix)


@dataclass(frozen=True)
class CvrpResult:
    name: str
    cost: int
    routes: int
    feasible: bool
    seconds: float

    def gap(self, best: int | None) -> float | None:
        return None if best is None else (self.cost - best) / best


def solve_cvrp(instance: CvrpInstance, *, time_limit_s: float | None = 10.0, seed: int = 0,
               max_iterations: int | None = None) -> CvrpResult:
    result = solver.solve(problem_data(instance), seed=seed, time_limit_s=time_limit_s,
                          max_iterations=max_iterations)
    best = result.best
    return CvrpResult(instance.name, int(best.distance()), best.num_routes(), result.is_feasible(), result.runtime)
