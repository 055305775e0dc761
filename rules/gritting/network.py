"""The road network file: segments, depots and gritting routes from GeoJSON, checked.

One FeatureCollection (docs/gritting.md has the full list of properties):
- a LineString per road segment: `segment_id` (or `id`, or the Feature's id), `name`,
  `priority` 1..3 (or an OpenStreetMap `highway` tag to derive it from), optional
  `length_m` (else measured along the line), `width_m`, `thermal_offset_c`,
  `thermal_offsets` {"extreme", "intermediate", "damped"}, `bridge`, `oneway`, `route`;
- a Point per depot with `depot_id` and `name`;
- a top-level `routes` list: {route_id, name, depot_id, salt_capacity_kg, vehicles, max_trips}.
Depots and routes may come from a second JSON file instead ({"depots": [...], "routes": [...]}),
which suits an OpenStreetMap extract converted by ogr2ogr (which keeps no top-level members).

Every problem is collected, each naming its feature, and raised together as one
InvalidRoadNetwork: a file imports whole or not at all. Graph nodes are the segment
endpoints rounded to 5 decimal places (about a metre), so roads that meet share a node.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rules.errors import InvalidRoadNetwork
from rules.geo import LocalProjection, haversine_m, line_length_m

if TYPE_CHECKING:
    from rules.gritting.snap import SegmentLines

WEATHER_CLASSES = ("extreme", "intermediate", "damped")
DEFAULT_WIDTH_M = 7.3               # a UK single carriageway (two 3.65 m lanes)
NODE_DECIMALS = 5                   # ~1.1 m: endpoints closer than this are one junction
MAX_DEPOT_DISTANCE_M = 500.0        # a depot further than this from every junction is an error
MAX_PROBLEMS = 25                   # problems listed in one error message
# OpenStreetMap highway classes to gritting priorities, when a feature has no priority
HIGHWAY_PRIORITY = {"motorway": 1, "trunk": 1, "primary": 1, "motorway_link": 1, "trunk_link": 1,
                    "primary_link": 1, "secondary": 2, "secondary_link": 2, "tertiary": 2, "tertiary_link": 2,
                    "bus_guideway": 2}
_TRUE = {True, "yes", "true", "1"}
_FALSE = {False, "no", "false", "0", None}


@dataclass(frozen=True)
class Segment:
    segment_id: str
    name: str
    priority: int
    length_m: float
    width_m: float
    coords: tuple[tuple[float, float], ...]       # lon, lat
    thermal_offset_c: float = 0.0
    thermal_offsets: Mapping[str, float] | None = None
    bridge: bool = False
    route_id: str | None = None
    oneway: bool = False

    @property
    def start_node(self) -> str:
        return node_id(*self.coords[0])

    @property
    def end_node(self) -> str:
        return node_id(*self.coords[-1])

    @property
    def midpoint(self) -> tuple[float, float]:
        """The point halfway along the line (lon, lat)."""
        points = np.asarray(self.coords)
        steps = haversine_m(points[:-1, 0], points[:-1, 1], points[1:, 0], points[1:, 1])
        half, run = float(steps.sum()) / 2, 0.0
        for k, step in enumerate(steps):
            if run + step >= half and step > 0:
                f = (half - run) / step
                a, b = points[k], points[k + 1]
                return float(a[0] + f * (b[0] - a[0])), float(a[1] + f * (b[1] - a[1]))
            run += step
        return float(points[-1, 0]), float(points[-1, 1])

    def offset_for(self, weather_class: str) -> float:
        """The thermal-mapping offset for the night's weather class (the plain offset if none)."""
        if self.thermal_offsets and weather_class in self.thermal_offsets:
            return float(self.thermal_offsets[weather_class])
        return self.thermal_offset_c

    def geojson(self) -> dict[str, Any]:
        return {"type": "LineString", "coordinates": [list(c) for c in self.coords]}


@dataclass(frozen=True)
class Depot:
    depot_id: str
    name: str
    lon: float
    lat: float


@dataclass(frozen=True)
class Route:
    route_id: str
    name: str
    depot_id: str
    salt_capacity_kg: float
    vehicles: int = 1
    max_trips: int = 4


@dataclass(frozen=True)
class SegmentColumns:
    """The segments' fields as arrays, in segment order: what a gritting run reads for every segment."""

    ids: list[str]
    names: list[str]
    route_of: list[str | None]
    priority: npt.NDArray[np.int64]
    length_m: npt.NDArray[np.float64]
    width_m: npt.NDArray[np.float64]
    oneway: npt.NDArray[np.bool_]
    index_of: dict[str, int]
    offsets: dict[str, npt.NDArray[np.float64]]     # thermal offset per weather class
    vertices: npt.NDArray[np.float64]               # every segment's lon/lat vertices, one after another
    sizes: npt.NDArray[np.int64]                    # vertices per segment

    @classmethod
    def of(cls, segments: Sequence[Segment]) -> SegmentColumns:
        n = len(segments)
        sizes = np.fromiter((len(s.coords) for s in segments), dtype=np.int64, count=n)
        vertices = np.fromiter(chain.from_iterable(chain.from_iterable(s.coords for s in segments)),
                               dtype=np.float64, count=2 * int(sizes.sum())).reshape(-1, 2)
        base = np.fromiter((s.thermal_offset_c for s in segments), dtype=np.float64, count=n)
        mapped = [k for k, seg in enumerate(segments) if seg.thermal_offsets]
        offsets = {"": base}
        for weather in WEATHER_CLASSES:
            offsets[weather] = per_class = base.copy()
            for k in mapped:
                per_class[k] = segments[k].offset_for(weather)
        ids = [s.segment_id for s in segments]
        return cls(ids, [s.name for s in segments], [s.route_id for s in segments],
                   np.fromiter((s.priority for s in segments), dtype=np.int64, count=n),
                   np.fromiter((s.length_m for s in segments), dtype=np.float64, count=n),
                   np.fromiter((s.width_m for s in segments), dtype=np.float64, count=n),
                   np.fromiter((s.oneway for s in segments), dtype=bool, count=n),
                   {sid: k for k, sid in enumerate(ids)}, offsets, vertices, sizes)

    def offsets_for(self, weather_class: str) -> npt.NDArray[np.float64]:
        """Per segment, Segment.offset_for(weather_class)."""
        return self.offsets.get(weather_class, self.offsets[""])


@dataclass(frozen=True)
class RoadNetwork:
    segments: tuple[Segment, ...]
    depots: tuple[Depot, ...] = ()
    routes: tuple[Route, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)   # what the import assumed

    @cached_property
    def columns(self) -> SegmentColumns:
        """The segments as arrays, built once per network (a network does not change)."""
        return SegmentColumns.of(self.segments)

    @cached_property
    def lines(self) -> SegmentLines:
        """The segments as lines in local metres with a spatial index, built once per network."""
        from rules.gritting.snap import SegmentLines

        columns = self.columns
        return SegmentLines.from_vertices(columns.vertices, columns.sizes, columns.oneway, self.projection())

    def route_segments(self, route_id: str) -> list[Segment]:
        return [s for s in self.segments if s.route_id == route_id]

    def depot(self, depot_id: str) -> Depot:
        return next(d for d in self.depots if d.depot_id == depot_id)

    def node_positions(self) -> dict[str, tuple[float, float]]:
        nodes: dict[str, tuple[float, float]] = {}
        for s in self.segments:
            nodes.setdefault(s.start_node, s.coords[0])
            nodes.setdefault(s.end_node, s.coords[-1])
        return nodes

    def nearest_node(self, lon: float, lat: float) -> tuple[str, float]:
        """The graph node nearest a point, and its distance in metres."""
        nodes = self.node_positions()
        if not nodes:
            raise InvalidRoadNetwork("the network has no road segments", source="network")
        names = list(nodes)
        where = np.array([nodes[n] for n in names])
        distance = haversine_m(lon, lat, where[:, 0], where[:, 1])
        best = int(np.argmin(distance))
        return names[best], float(distance[best])

    def depot_node(self, depot_id: str) -> str:
        depot = self.depot(depot_id)
        return self.nearest_node(depot.lon, depot.lat)[0]

    def unreachable(self, route_id: str) -> list[str]:
        """The route's segments that cannot be reached from its depot (ignoring one-way)."""
        route = next(r for r in self.routes if r.route_id == route_id)
        links: dict[str, list[str]] = {}
        for s in self.segments:
            links.setdefault(s.start_node, []).append(s.end_node)
            links.setdefault(s.end_node, []).append(s.start_node)
        seen = {self.depot_node(route.depot_id)}
        queue = deque(seen)
        while queue:
            for nxt in links.get(queue.popleft(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return [s.segment_id for s in self.route_segments(route_id) if s.start_node not in seen]

    def projection(self) -> LocalProjection:
        columns = self.columns
        starts = columns.vertices[np.cumsum(columns.sizes) - columns.sizes] if self.segments else np.zeros((0, 2))
        return LocalProjection.around(starts[:, 0], starts[:, 1])


def node_id(lon: float, lat: float) -> str:
    return f"{lon:.{NODE_DECIMALS}f},{lat:.{NODE_DECIMALS}f}"


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []
        self.first_feature: str | None = None

    def add(self, where: str, text: str) -> None:
        if self.first_feature is None:
            self.first_feature = where
        self.lines.append(f"{where}: {text}")

    def raise_if_any(self) -> None:
        if not self.lines:
            return
        shown = self.lines[:MAX_PROBLEMS]
        more = len(self.lines) - len(shown)
        text = "\n  ".join(shown) + (f"\n  ... and {more} more" if more else "")
        raise InvalidRoadNetwork(f"{self.source}: {len(self.lines)} problem(s), nothing imported:\n  {text}",
                                 source=self.source, feature=self.first_feature)


def parse_network(data: Any, source: str = "network", *, extra: Mapping[str, Any] | None = None,
                  default_width_m: float = DEFAULT_WIDTH_M, area: Any = None) -> RoadNetwork:
    """A checked RoadNetwork from a parsed GeoJSON FeatureCollection (and an optional routes file).

    `area` (a shapely polygon in lon/lat) only serves to recognise latitude and longitude
    given the wrong way round."""
    problems = _Problems(source)
    if not isinstance(data, Mapping) or data.get("type") != "FeatureCollection":
        kind = data.get("type") if isinstance(data, Mapping) else type(data).__name__
        raise InvalidRoadNetwork(f"{source}: expected a GeoJSON FeatureCollection, got {kind!r}", source=source)
    _check_crs(data, problems)
    features = data.get("features")
    if not isinstance(features, list):
        raise InvalidRoadNetwork(f"{source}: the FeatureCollection has no 'features' list", source=source)
    segments: list[Segment] = []
    depots: list[Depot] = []
    notes: list[str] = []
    seen: dict[str, str] = {}
    widths_assumed = priorities_derived = 0
    for index, feature in enumerate(features):
        where = _where(index, feature)
        if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
            problems.add(where, "not a GeoJSON Feature")
            continue
        props = feature.get("properties") or {}
        geometry = feature.get("geometry")
        kind = geometry.get("type") if isinstance(geometry, Mapping) else None
        if kind == "Point" and "depot_id" in props and isinstance(geometry, Mapping):
            depot = _depot(props, geometry, where, problems)
            if depot is not None:
                depots.append(depot)
            continue
        segment_id = _text(props.get("segment_id", props.get("id", feature.get("id"))))
        if not segment_id:
            problems.add(where, "no segment id (property `segment_id` or `id`)")
            continue
        if segment_id in seen:
            problems.add(where, f"duplicate segment id {segment_id!r} (also {seen[segment_id]})")
            continue
        seen[segment_id] = where
        coords = _line(geometry, kind, where, problems)
        if coords is None:
            continue
        segment, assumed_width, derived = _segment(segment_id, props, coords, where, problems, default_width_m)
        if segment is not None:
            segments.append(segment)
            widths_assumed += assumed_width
            priorities_derived += derived
    routes = _routes(data.get("routes"), extra, depots, problems, source)
    _check_references(segments, depots, routes, problems)
    _check_swapped(segments, depots, area, problems)
    problems.raise_if_any()
    if widths_assumed:
        notes.append(f"{widths_assumed} segment(s) without width_m: {default_width_m:g} m assumed")
    if priorities_derived:
        notes.append(f"{priorities_derived} segment(s) without priority: taken from the OpenStreetMap highway tag")
    network = RoadNetwork(tuple(segments), tuple(depots), tuple(routes), tuple(notes))
    for route in routes:
        node, distance = network.nearest_node(network.depot(route.depot_id).lon, network.depot(route.depot_id).lat)
        if distance > MAX_DEPOT_DISTANCE_M:
            problems.add(f"depot {route.depot_id!r}",
                         f"{distance:.0f} m from the nearest road junction ({node}); "
                         f"a depot must be within {MAX_DEPOT_DISTANCE_M:g} m of the network")
        elif cut := network.unreachable(route.route_id):
            notes.append(f"route {route.route_id}: {len(cut)} segment(s) not connected to its depot "
                         f"({', '.join(cut[:5])}{' ...' if len(cut) > 5 else ''}): they cannot be planned")
    problems.raise_if_any()
    return RoadNetwork(tuple(segments), tuple(depots), tuple(routes), tuple(notes))


def _where(index: int, feature: Any) -> str:
    props = feature.get("properties") if isinstance(feature, Mapping) else None
    ident = None
    if isinstance(props, Mapping):
        ident = props.get("segment_id", props.get("id", props.get("depot_id")))
    if ident is None and isinstance(feature, Mapping):
        ident = feature.get("id")
    return f"feature {index}" + (f" (id {ident!r})" if ident is not None else "")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _check_crs(data: Mapping[str, Any], problems: _Problems) -> None:
    crs = data.get("crs")
    if crs is None:
        return
    name = str((crs.get("properties") or {}).get("name", "")) if isinstance(crs, Mapping) else str(crs)
    if not any(ok in name.upper() for ok in ("CRS84", "4326")):
        problems.add("crs", f"coordinates are in {name!r}, not lon/lat: export as EPSG:4326 "
                            "(ogr2ogr -t_srs EPSG:4326)")


def _position(value: Any) -> tuple[float, float] | str:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) < 2:
        return f"position {value!r} is not [lon, lat]"
    try:
        lon, lat = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return f"position {value!r} is not numbers"
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return f"position {value!r} is not finite"
    if abs(lon) > 180 or abs(lat) > 90:
        return (f"coordinates ({lon:g}, {lat:g}) are not lon/lat degrees (a projected grid such as British "
                "National Grid?): export as EPSG:4326")
    return lon, lat


def _line(geometry: Any, kind: str | None, where: str, problems: _Problems) -> tuple[tuple[float, float], ...] | None:
    if geometry is None:
        problems.add(where, "no geometry")
        return None
    if kind != "LineString":
        advice = ": split it into LineStrings (ogr2ogr -explodecollections)" if kind == "MultiLineString" else ""
        problems.add(where, f"geometry is a {kind or 'nothing'}, not a LineString{advice}")
        return None
    raw = geometry.get("coordinates")
    if not isinstance(raw, list) or len(raw) < 2:
        problems.add(where, "invalid LineString: it needs at least two positions")
        return None
    coords: list[tuple[float, float]] = []
    for value in raw:
        position = _position(value)
        if isinstance(position, str):
            problems.add(where, position)
            return None
        coords.append(position)
    if line_length_m(coords) < 0.5:
        problems.add(where, "invalid LineString: all its positions are the same point (zero length)")
        return None
    return tuple(coords)


def _number(props: Mapping[str, Any], key: str, where: str, problems: _Problems, *, positive: bool = False
            ) -> float | None:
    value = props.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(str(value).removesuffix(" m").strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        problems.add(where, f"{key} {value!r} is not a number")
        return None
    if not math.isfinite(number) or (positive and number <= 0):
        problems.add(where, f"{key} {value!r} must be {'a positive' if positive else 'a finite'} number")
        return None
    return number


def _flag(props: Mapping[str, Any], key: str, where: str, problems: _Problems) -> bool:
    value = props.get(key)
    value = value.lower() if isinstance(value, str) else value
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if key == "bridge" and isinstance(value, str):   # OpenStreetMap: bridge=viaduct, bridge=boardwalk ...
        return True
    problems.add(where, f"{key} {props.get(key)!r} is not true/false (or yes/no)")
    return False


def _segment(segment_id: str, props: Mapping[str, Any], coords: tuple[tuple[float, float], ...], where: str,
             problems: _Problems, default_width_m: float) -> tuple[Segment | None, int, int]:
    before = len(problems.lines)
    raw_priority, derived = props.get("priority"), 0
    if raw_priority is None and props.get("highway") is not None:
        raw_priority, derived = HIGHWAY_PRIORITY.get(str(props["highway"]), 3), 1
    priority: int | None = None
    if raw_priority is None:
        problems.add(where, "no priority (1, 2 or 3)")
    else:
        try:
            priority = int(raw_priority)
            if priority != float(raw_priority) or not 1 <= priority <= 3:
                raise ValueError
        except (TypeError, ValueError):
            problems.add(where, f"priority {raw_priority!r} is outside 1..3")
    length = _number(props, "length_m", where, problems, positive=True)
    width = _number(props, "width_m", where, problems, positive=True)
    if width is None and "width_m" not in props and props.get("width") is not None:
        width = _number(props, "width", where, problems, positive=True)   # the OpenStreetMap tag
    offset = _number(props, "thermal_offset_c", where, problems)
    offsets = _offsets(props.get("thermal_offsets"), where, problems)
    oneway_raw = props.get("oneway")
    reverse = str(oneway_raw) == "-1"       # OpenStreetMap: one way against the drawing direction
    oneway = True if reverse else _flag(props, "oneway", where, problems)
    bridge = _flag(props, "bridge", where, problems)
    route = _text(props.get("route", props.get("route_id"))) or None
    if len(problems.lines) > before or priority is None:
        return None, 0, 0
    name = _text(props.get("name"))
    ref = _text(props.get("ref"))
    if ref and ref not in name:
        name = f"{ref} {name}".strip()
    segment = Segment(segment_id, name or f"unnamed road {segment_id}", priority,
                      length if length is not None else line_length_m(coords),
                      width if width is not None else default_width_m,
                      tuple(reversed(coords)) if reverse else coords,
                      offset if offset is not None else 0.0, offsets, bridge, route, oneway)
    return segment, int(width is None), derived


def _offsets(value: Any, where: str, problems: _Problems) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.add(where, f"thermal_offsets must be an object like {{\"extreme\": -1.5}}, got {value!r}")
        return None
    result: dict[str, float] = {}
    for key, number in value.items():
        if key not in WEATHER_CLASSES:
            problems.add(where, f"thermal_offsets has weather class {key!r}; use {', '.join(WEATHER_CLASSES)}")
        elif isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            problems.add(where, f"thermal_offsets[{key!r}] {number!r} is not a number")
        else:
            result[key] = float(number)
    return result


def _depot(props: Mapping[str, Any], geometry: Mapping[str, Any], where: str, problems: _Problems) -> Depot | None:
    position = _position(geometry.get("coordinates"))
    if isinstance(position, str):
        problems.add(where, position)
        return None
    depot_id = _text(props.get("depot_id"))
    if not depot_id:
        problems.add(where, "empty depot_id")
        return None
    return Depot(depot_id, _text(props.get("name")) or depot_id, *position)


def _routes(top: Any, extra: Mapping[str, Any] | None, depots: list[Depot], problems: _Problems,
            source: str) -> list[Route]:
    entries: list[tuple[str, Any]] = []
    if top is not None:
        if not isinstance(top, list):
            problems.add("routes", "the top-level `routes` must be a list")
        else:
            entries += [(f"routes[{k}]", r) for k, r in enumerate(top)]
    if extra is not None:
        for k, d in enumerate(extra.get("depots") or []):
            where = f"depots[{k}]"
            if not isinstance(d, Mapping) or not _text(d.get("depot_id")):
                problems.add(where, "a depot needs depot_id, lon and lat")
                continue
            position = _position([d.get("lon"), d.get("lat")])
            if isinstance(position, str):
                problems.add(where, position)
                continue
            depots.append(Depot(_text(d["depot_id"]), _text(d.get("name")) or _text(d["depot_id"]), *position))
        entries += [(f"routes file routes[{k}]", r) for k, r in enumerate(extra.get("routes") or [])]
    routes: list[Route] = []
    for where, entry in entries:
        if not isinstance(entry, Mapping):
            problems.add(where, "a route must be an object")
            continue
        route_id, depot_id = _text(entry.get("route_id")), _text(entry.get("depot_id"))
        if not route_id or not depot_id:
            problems.add(where, "a route needs route_id and depot_id")
            continue
        here = f"route {route_id!r}"
        capacity = _number(entry, "salt_capacity_kg", here, problems, positive=True)
        vehicles = _number(entry, "vehicles", here, problems, positive=True)
        trips = _number(entry, "max_trips", here, problems, positive=True)
        if capacity is None:
            if "salt_capacity_kg" not in entry:
                problems.add(here, "no salt_capacity_kg (what one gritter carries, kg)")
            continue
        if any(v is not None and v != int(v) for v in (vehicles, trips)):
            problems.add(here, "vehicles and max_trips are whole numbers")
            continue
        routes.append(Route(route_id, _text(entry.get("name")) or route_id, depot_id, capacity,
                            int(vehicles or 1), int(trips or 4)))
    ids = [r.route_id for r in routes]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.add(f"route {dup!r}", "defined more than once")
    depot_ids = [d.depot_id for d in depots]
    for dup in sorted({i for i in depot_ids if depot_ids.count(i) > 1}):
        problems.add(f"depot {dup!r}", "defined more than once")
    return routes


def _check_references(segments: Iterable[Segment], depots: list[Depot], routes: list[Route],
                      problems: _Problems) -> None:
    depot_ids = {d.depot_id for d in depots}
    route_ids = {r.route_id for r in routes}
    for route in routes:
        if route.depot_id not in depot_ids:
            problems.add(f"route {route.route_id!r}", f"depot {route.depot_id!r} is not defined "
                                                      "(a Point feature with depot_id, or the routes file)")
    for segment in segments:
        if segment.route_id is not None and segment.route_id not in route_ids:
            problems.add(f"segment {segment.segment_id!r}", f"route {segment.route_id!r} is not defined "
                                                            "(the top-level `routes` list or --routes FILE)")


def _check_swapped(segments: list[Segment], depots: list[Depot], area: Any, problems: _Problems) -> None:
    """Latitude and longitude the wrong way round: outside the council's area, inside it swapped."""
    if area is None or not segments:
        return
    import shapely

    points = np.array([s.coords[0] for s in segments] + [(d.lon, d.lat) for d in depots])
    inside = shapely.contains_xy(area, points[:, 0], points[:, 1])
    swapped = shapely.contains_xy(area, points[:, 1], points[:, 0])
    if swapped.mean() > 0.5 and inside.mean() < 0.5:
        problems.add("coordinates", "latitude and longitude look swapped (GeoJSON positions are [lon, lat])")
