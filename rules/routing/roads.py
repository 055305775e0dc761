"""Bin rounds on the road network: bins snapped to streets, and the drive between them. Pure: no I/O.

Each point (the depot first, then the bins) goes to the nearest street segment (point to
line, in local metres) within `snap_max_m` (150 m: a bin on a pavement, a depot in its yard);
that gives the street's name and how far along the segment the point is. From a point the
truck reaches the segment's end, and its start too unless the street is one-way; it arrives
at a point from its segment's start, or from its end unless one-way (on the same segment,
straight along it where the direction allows). Paths are the fastest over the graph
(rules.routing.graph: one-way streets only forwards), each segment driven at its road class's
speed (priority 1 main roads, 2 distributors, 3 residential; from the settings, docs/bins.md);
the distance matrix is the length of those paths. A point further than `snap_max_m` from every
street is not snapped: its legs are straight lines x `detour_factor` at `fallback_kmh`, and
the notes name it. The truck may leave a bin either way along a two-way street: the direction
it arrived in is not tracked (in practice it turns at the next junction or turning head).

A leg's path (coordinates along the roads) and its turn-by-turn directions (the gritting job
sheet's words, rules.gritting.instructions) are worked out again when asked for: the matrix
keeps no paths, so a town of thousands of bins does not hold millions of them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise

import numpy as np
import numpy.typing as npt
import shapely

from rules.errors import RoutingError
from rules.geo import distance_matrix_m, haversine_m
from rules.gritting.instructions import Leg, distance_words, extend, heading, junction_names, oriented, turn_into
from rules.gritting.network import RoadNetwork, Segment
from rules.routing.graph import UNREACHABLE, Edge, RoadGraph

SNAP_MAX_M = 150.0
# km/h by road priority for a refuse lorry in a UK town (docs/bins.md, "Speeds"); the settings
# (CITYOPS_BINS__MAIN_ROAD_KMH, __DISTRIBUTOR_KMH, __RESIDENTIAL_KMH) give a council's own
DEFAULT_SPEEDS_KMH: dict[int, float] = {1: 30.0, 2: 25.0, 3: 18.0}
MS_PER_S = 1000
DEPOT_LABEL = "the depot"            # how the plan names the depot in directions


@dataclass(frozen=True)
class Anchor:
    """Where a point meets the road: its segment (-1: not snapped) and metres along it from its start."""

    lon: float
    lat: float
    segment: int
    along_m: float
    distance_m: float                  # from the point to the street (NaN when not snapped)
    street: str | None
    road_lon: float                    # the snapped position (the point itself when not snapped)
    road_lat: float

    @property
    def snapped(self) -> bool:
        return self.segment >= 0


@dataclass(frozen=True)
class LegPath:
    """One leg of a round: its length, drive time, line and the words for the crew."""

    distance_m: int
    duration_s: int
    coords: tuple[tuple[float, float], ...]
    directions: tuple[str, ...]
    geometry: str                      # "roads" or "straight"


@dataclass(frozen=True)
class _Way:
    """The best way from one point to another found in a search: via which end it enters the target."""

    ms: int
    metres: float
    entry: int                         # node the target's segment is entered from; -1: along the same segment


@dataclass
class RoadMatrices:
    """Distances (m) and drive times (s) between the depot (0) and the bins (1..n) over the roads."""

    network: RoadNetwork
    anchors: list[Anchor]
    distance_m: npt.NDArray[np.int64]
    duration_s: npt.NDArray[np.int64]
    speeds_kmh: Mapping[int, float]
    detour_factor: float
    fallback_kmh: float
    graph: RoadGraph
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def streets(self) -> list[str | None]:
        return [a.street for a in self.anchors]

    @cached_property
    def _junctions(self) -> dict[str, str]:
        return junction_names(self.network)

    def leg(self, i: int, j: int, from_label: str, to_label: str) -> LegPath:
        """The leg from point i to point j: along the roads, or a straight line when either is not snapped."""
        a, b = self.anchors[i], self.anchors[j]
        metres, seconds = int(self.distance_m[i, j]), int(self.duration_s[i, j])
        if not (a.snapped and b.snapped):
            return LegPath(metres, seconds, ((a.lon, a.lat), (b.lon, b.lat)),
                           (f"Drive from {from_label} to {to_label} ({distance_words(metres)}; "
                            "not near a mapped street: find the way there)",), "straight")
        dist, via, metres_at = _search(self.graph, self.network, a, self.speeds_kmh)
        way = _best_way(self.network, self.graph, a, b, dist, metres_at, self.speeds_kmh)
        if way is None:
            return LegPath(metres, seconds, ((a.lon, a.lat), (b.lon, b.lat)),
                           (f"Drive from {from_label} to {to_label} ({distance_words(metres)}; "
                            "no way along the mapped streets)",), "straight")
        pieces = self._pieces(a, b, way, via)
        coords = _join([(a.lon, a.lat)] + [c for piece, _ in pieces for c in piece] + [(b.lon, b.lat)])
        return LegPath(metres, seconds, tuple(coords), tuple(self._words(pieces, from_label, to_label, b)), "roads")

    def _pieces(self, a: Anchor, b: Anchor, way: _Way, via: list[int]
                ) -> list[tuple[list[tuple[float, float]], Leg]]:
        """The leg as pieces along one segment each (partial at both ends), with a crew Leg for each."""
        segments, projection = self.network.segments, self.network.lines.projection
        pieces: list[tuple[list[tuple[float, float]], Leg]] = []

        def piece(coords: list[tuple[float, float]], seg: Segment, length: float, start: str, end: str) -> None:
            if length <= 0.5 or len(coords) < 2:
                return
            leg = Leg(seg.name, False, 0.0, length, start, end, heading(coords, False, projection),
                      heading(coords, True, projection), 0.0)
            pieces.append((coords, leg))

        s, t = segments[a.segment], segments[b.segment]
        if way.entry < 0:
            piece(_cut(s, a.along_m, b.along_m), s, abs(b.along_m - a.along_m), "a", "b")
            return pieces
        walked = self.graph.path_to(via, way.entry)
        exit_node = walked[0][1] if walked else way.entry
        exit_name = self.graph.nodes[exit_node]
        piece(_cut(s, a.along_m, 0.0 if exit_name == s.start_node else s.length_m), s,
              a.along_m if exit_name == s.start_node else s.length_m - a.along_m, "a", exit_name)
        for edge, frm, to in walked:
            seg = segments[edge]
            piece(oriented(seg, self.graph.nodes[frm]), seg, seg.length_m, self.graph.nodes[frm],
                  self.graph.nodes[to])
        entry_name = self.graph.nodes[way.entry]
        from_start = entry_name == t.start_node
        piece(_cut(t, 0.0 if from_start else t.length_m, b.along_m), t,
              b.along_m if from_start else t.length_m - b.along_m, entry_name, "b")
        return pieces

    def _words(self, pieces: Sequence[tuple[list[tuple[float, float]], Leg]], from_label: str, to_label: str,
               b: Anchor) -> list[str]:
        legs: list[Leg] = []
        for _, leg in pieces:
            extend(legs, leg)
        if not legs:
            return [f"{to_label} is beside {from_label} on {b.street}."]
        steps = [f"Leave {from_label} along {legs[0].road} ({distance_words(legs[0].length_m)})."]
        for previous, leg in pairwise(legs):
            steps.append(f"{turn_into(previous, leg, self._junctions)} ({distance_words(leg.length_m)}).")
        steps.append(f"Stop at {to_label} on {b.street}." if to_label != DEPOT_LABEL else
                     f"Return to {to_label} ({b.street}).")
        return steps


def road_matrices(network: RoadNetwork, lon: Sequence[float], lat: Sequence[float], *,
                  speeds_kmh: Mapping[int, float] | None = None, snap_max_m: float = SNAP_MAX_M,
                  detour_factor: float = 1.3, fallback_kmh: float = 25.0) -> RoadMatrices:
    """The matrices between points (the depot first) over `network`, which must have segments."""
    began = time.perf_counter()
    if not network.segments:
        raise RoutingError("the road network has no segments", hint="import one: cityops roads import FILE")
    speeds = {**DEFAULT_SPEEDS_KMH, **(speeds_kmh or {})}
    if any(not v > 0 for v in speeds.values()) or fallback_kmh <= 0:
        raise RoutingError(f"road speeds must be positive km/h, got {speeds} (fallback {fallback_kmh})")
    anchors = snap(network, lon, lat, snap_max_m)
    graph = RoadGraph([Edge(s.segment_id, s.start_node, s.end_node, s.length_m, s.oneway) for s in network.segments],
                      [_ms(s.length_m, s, speeds) for s in network.segments])
    # the straight-line estimate, for points off the network or with no way between them
    straight = distance_matrix_m(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)) * detour_factor
    distance = np.rint(straight).astype(np.int64)
    duration = np.rint(straight / (fallback_kmh / 3.6)).astype(np.int64)
    snapped = [k for k, a in enumerate(anchors) if a.snapped]
    targets = _target_nodes(network, graph, [anchors[k] for k in snapped])
    no_way = 0
    for i in snapped:
        dist, _, metres_at = _search(graph, network, anchors[i], speeds, targets)
        for j in snapped:
            if i == j:
                continue
            way = _best_way(network, graph, anchors[i], anchors[j], dist, metres_at, speeds)
            if way is None:
                no_way += 1
                continue
            distance[i, j] = round(way.metres)
            duration[i, j] = round(way.ms / MS_PER_S)
    np.fill_diagonal(distance, 0)
    np.fill_diagonal(duration, 0)
    notes = []
    off = [k for k, a in enumerate(anchors) if not a.snapped]
    if off:
        named = ", ".join("the depot" if k == 0 else f"point {k}" for k in off[:5])
        notes.append(f"{len(off)} place(s) more than {snap_max_m:g} m from every street ({named}"
                     f"{' ...' if len(off) > 5 else ''}): their legs are straight lines x{detour_factor:g}")
    if no_way:
        notes.append(f"{no_way} leg(s) have no way along the mapped streets (one-way or cut off): "
                     f"straight lines x{detour_factor:g}")
    return RoadMatrices(network, anchors, distance, duration, speeds, detour_factor, fallback_kmh, graph,
                        time.perf_counter() - began, notes)


def snap(network: RoadNetwork, lon: Sequence[float], lat: Sequence[float], snap_max_m: float = SNAP_MAX_M
         ) -> list[Anchor]:
    """Each point's nearest street segment within `snap_max_m`, and how far along it (metres from its start)."""
    lines = network.lines
    lons, lats = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    x, y = lines.projection.xy(lons, lats)
    points = shapely.points(x, y)
    found: dict[int, int] = {}
    if len(points):
        (which, nearest), _ = lines.tree.query_nearest(points, max_distance=snap_max_m, return_distance=True,
                                                       all_matches=False)
        found = {int(p): int(s) for p, s in zip(which, nearest, strict=True)}
    anchors = []
    for k in range(len(lons)):
        if k not in found:
            anchors.append(Anchor(float(lons[k]), float(lats[k]), -1, 0.0, float("nan"), None,
                                  float(lons[k]), float(lats[k])))
            continue
        seg = found[k]
        line = lines.lines[seg]
        along = float(shapely.line_locate_point(line, points[k]))
        on = shapely.line_interpolate_point(line, along)
        road_lon, road_lat = lines.projection.lonlat(shapely.get_x(on), shapely.get_y(on))
        geometric = float(shapely.length(line))
        segment = network.segments[seg]
        anchors.append(Anchor(float(lons[k]), float(lats[k]), seg,
                              along / geometric * segment.length_m if geometric > 0 else 0.0,
                              float(shapely.distance(line, points[k])), segment.name, float(road_lon),
                              float(road_lat)))
    return anchors


def _ms(metres: float, segment: Segment, speeds: Mapping[int, float]) -> int:
    """Milliseconds to drive `metres` of the segment at its class's speed."""
    return round(metres / (speeds.get(segment.priority, speeds[3]) / 3.6) * MS_PER_S)


def _target_nodes(network: RoadNetwork, graph: RoadGraph, anchors: Sequence[Anchor]) -> set[int]:
    nodes: set[int] = set()
    for a in anchors:
        seg = network.segments[a.segment]
        nodes.update((graph.index[seg.start_node], graph.index[seg.end_node]))
    return nodes


def _search(graph: RoadGraph, network: RoadNetwork, a: Anchor, speeds: Mapping[int, float],
            targets: set[int] | None = None) -> tuple[list[int], list[int], list[float]]:
    """Fastest ways from a point to every node (ms), each node's incoming edge, and metres along those ways."""
    seg = network.segments[a.segment]
    start, end = graph.index[seg.start_node], graph.index[seg.end_node]
    head = {end: _ms(seg.length_m - a.along_m, seg, speeds)}
    metres_start = {end: seg.length_m - a.along_m}
    if not seg.oneway:
        to_start = _ms(a.along_m, seg, speeds)
        if to_start < head.get(start, UNREACHABLE):
            head[start], metres_start[start] = to_start, a.along_m
    dist, via = graph.dijkstra(head, targets if targets is not None else set(range(len(graph.nodes))))
    metres_at = [float("nan")] * len(dist)
    for node in range(len(dist)):
        if dist[node] >= UNREACHABLE or not np.isnan(metres_at[node]):
            continue
        chain = []
        at = node
        while via[at] >= 0 and np.isnan(metres_at[at]):
            chain.append(at)
            at = graph.other_end(via[at], at)
        base = metres_at[at] if not np.isnan(metres_at[at]) else metres_start.get(at, 0.0)
        metres_at[at] = base
        for n in reversed(chain):
            base += graph.edges[via[n]].length_m
            metres_at[n] = base
    return dist, via, metres_at


def _best_way(network: RoadNetwork, graph: RoadGraph, a: Anchor, b: Anchor, dist: list[int],
              metres_at: list[float], speeds: Mapping[int, float]) -> _Way | None:
    t = network.segments[b.segment]
    start, end = graph.index[t.start_node], graph.index[t.end_node]
    ways = []
    if dist[start] < UNREACHABLE:
        ways.append(_Way(dist[start] + _ms(b.along_m, t, speeds), metres_at[start] + b.along_m, start))
    if not t.oneway and dist[end] < UNREACHABLE:
        ways.append(_Way(dist[end] + _ms(t.length_m - b.along_m, t, speeds),
                         metres_at[end] + t.length_m - b.along_m, end))
    if a.segment == b.segment and (b.along_m >= a.along_m or not t.oneway):
        gap = abs(b.along_m - a.along_m)
        ways.append(_Way(_ms(gap, t, speeds), gap, -1))
    return min(ways, key=lambda w: (w.ms, w.metres)) if ways else None


def _cut(segment: Segment, from_m: float, to_m: float) -> list[tuple[float, float]]:
    """The segment's line between two distances along it (metres of `length_m`), in that direction."""
    pts = np.asarray(segment.coords, dtype=np.float64)
    steps = haversine_m(pts[:-1, 0], pts[:-1, 1], pts[1:, 0], pts[1:, 1])
    cum = np.concatenate([[0.0], np.cumsum(steps)])
    scale = cum[-1] / segment.length_m if segment.length_m > 0 else 0.0
    lo, hi = sorted((from_m * scale, to_m * scale))

    def at(d: float) -> tuple[float, float]:
        k = int(np.clip(np.searchsorted(cum, d, side="right") - 1, 0, len(steps) - 1))
        f = 0.0 if steps[k] == 0 else (d - cum[k]) / steps[k]
        return float(pts[k, 0] + f * (pts[k + 1, 0] - pts[k, 0])), float(pts[k, 1] + f * (pts[k + 1, 1] - pts[k, 1]))

    inside = [(float(p[0]), float(p[1])) for p, d in zip(pts, cum, strict=True) if lo < d < hi]
    line = [at(lo), *inside, at(hi)]
    return line if from_m <= to_m else line[::-1]


def _join(coords: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The coordinates without a point repeated straight after itself."""
    out: list[tuple[float, float]] = []
    for c in coords:
        rounded = (round(c[0], 6), round(c[1], 6))
        if not out or out[-1] != rounded:
            out.append(rounded)
    return out
