"""CARPLIB `.dat` files (the gdb, val and egl sets; Spanish keywords) and their published values.

    NOMBRE : gdb1                        the instance name
    VERTICES : 12                        vertices are 1..VERTICES
    VEHICULOS : 5                        ceil(total demand / Q): a lower bound, not a fleet limit
    CAPACIDAD : 5                        Q
    LISTA_ARISTAS_REQ :                  ( i, j)  coste c  demanda q      (one line per required edge)
    LISTA_ARISTAS_NOREQ :                ( i, j)  coste c                 (egl files only)
    DEPOSITO : 1

Spacing varies and lines may start or end with blanks, so edge lines are read with a regex.
COMENTARIO is an old upper bound, not the optimum, and COSTE_TOTAL_REQ is unreliable (wrong in
every val file): both are kept as text only. The optimum comes from a carp_bks.csv
(instance,value,source) beside the file or one folder up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rules.errors import InvalidInstance
from rules.routing.cvrplib import read_bks

_REQUIRED = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*coste\s+(\d+)\s+demanda\s+(\d+)", re.IGNORECASE)
_OTHER = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*coste\s+(\d+)\s*$", re.IGNORECASE)
_SECTIONS = {"LISTA_ARISTAS_REQ": "required", "LISTA_ARISTAS_NOREQ": "other"}
_INTEGER_KEYS = ("VERTICES", "ARISTAS_REQ", "VEHICULOS", "CAPACIDAD")
FORMAT_HINT = "a CARPLIB .dat file (gdb, val, egl sets); the format is in docs/routing.md and CARPLIB's README"


@dataclass(frozen=True)
class CarpEdge:
    u: int
    v: int
    cost: int
    demand: int = 0                      # > 0 on a required edge


@dataclass(frozen=True)
class CarpInstance:
    name: str
    vertices: int
    vehicles: int                        # the file's VEHICULOS: a lower bound on the fleet
    capacity: int
    depot: int
    required: tuple[CarpEdge, ...]
    other: tuple[CarpEdge, ...] = ()     # edges that may be driven but need no service
    comment: str = ""

    @property
    def total_demand(self) -> int:
        return sum(e.demand for e in self.required)


def read_dat(path: Path) -> CarpInstance:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _bad(f"cannot read {path}: {exc.strerror}", source) from exc
    header: dict[str, str] = {}
    edges: dict[str, list[CarpEdge]] = {"required": [], "other": []}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.upper() == "END":
            continue
        if line.startswith("("):
            if current is None:
                raise _bad(f"{path.name} line {number}: an edge before any LISTA_ARISTAS section", source)
            edges[current].append(_edge(line, current, path.name, number, source))
            continue
        key, colon, value = line.partition(":")
        key = key.strip().upper()
        if not colon:
            raise InvalidInstance(f"{path.name} line {number}: unexpected line {line!r}", source=source,
                                  hint="edge lines look like '( 1, 2)  coste 13 demanda 1'")
        if key in _SECTIONS:
            current = _SECTIONS[key]
        else:
            header[key] = value.strip()
            current = None
    return _instance(header, edges, path, source)


def _edge(line: str, section: str, name: str, number: int, source: str) -> CarpEdge:
    if section == "required":
        found = _REQUIRED.fullmatch(line)
        if found:
            return CarpEdge(*(int(g) for g in found.groups()))
    else:
        found = _OTHER.fullmatch(line)
        if found:
            u, v, cost = (int(g) for g in found.groups())
            return CarpEdge(u, v, cost)
    raise InvalidInstance(f"{name} line {number}: a malformed edge {line!r}", source=source,
                          hint="required edges: '( i, j)  coste c  demanda q'; others: '( i, j)  coste c'")


def _instance(header: dict[str, str], edges: dict[str, list[CarpEdge]], path: Path, source: str) -> CarpInstance:
    for key in _INTEGER_KEYS:
        if key not in header:
            raise _bad(f"{path.name}: no {key} line", source)
    try:
        vertices, listed, vehicles, capacity = (int(header[key]) for key in _INTEGER_KEYS)
        depot = int(header.get("DEPOSITO", "1"))
    except ValueError as exc:
        raise _bad(f"{path.name}: a header value is not a whole number ({exc})", source) from exc
    required = tuple(edges["required"])
    if len(required) != listed:
        raise _bad(f"{path.name}: ARISTAS_REQ is {listed} but {len(required)} required edges are listed", source)
    if capacity <= 0:
        raise _bad(f"{path.name}: the capacity must be positive, got {capacity}", source)
    for edge in (*required, *edges["other"]):
        if not (1 <= edge.u <= vertices and 1 <= edge.v <= vertices):
            raise _bad(f"{path.name}: edge ({edge.u}, {edge.v}) names a vertex outside 1..{vertices}", source)
        if edge.demand > capacity:
            raise _bad(f"{path.name}: edge ({edge.u}, {edge.v}) has demand {edge.demand}, more than "
                       f"the capacity {capacity}", source)
    if not 1 <= depot <= vertices:
        raise _bad(f"{path.name}: the depot {depot} is outside 1..{vertices}", source)
    return CarpInstance(header.get("NOMBRE", path.stem), vertices, vehicles, capacity, depot, required,
                        tuple(edges["other"]), header.get("COMENTARIO", ""))


def _bad(message: str, source: str) -> InvalidInstance:
    return InvalidInstance(message, source=source, hint=FORMAT_HINT)


def best_known(instance: CarpInstance, dat_path: Path, bks_path: Path | None = None) -> int | None:
    """From a carp_bks.csv given, or found beside the file or one folder up; None when there is none."""
    if bks_path is not None and not bks_path.is_file():
        raise InvalidInstance(f"no published values file {bks_path}", source=str(bks_path),
                              hint="a CSV with instance,value,source columns (carp_bks.csv)")
    candidates = [bks_path] if bks_path else [dat_path.parent / "carp_bks.csv",
                                              dat_path.parent.parent / "carp_bks.csv"]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            value = read_bks(candidate).get(instance.name)
            if value is not None:
                return value
    return None
