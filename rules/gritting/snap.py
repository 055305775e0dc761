"""Gritter GPS points to the road segment they were taken on.

Each point goes to the nearest segment within `tolerance_m` (25 m: GPS error plus a
carriageway's width). Where two segments are that near (a junction, a dual carriageway,
a road beside a slip road), the vehicle's heading decides: it comes from the device's
previous and next points (at most two minutes apart and five metres moved), and the
segments whose direction agrees with it within 45 degrees win over those that do not;
a one-way segment agrees only with travel its own way. Points further than the tolerance
from every road are not snapped, and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from rules.geo import LocalProjection, angle_between, bearing_deg

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AGREE_DEG = 45.0
HEADING_MAX_GAP_S = 120.0
HEADING_MIN_MOVE_M = 5.0


@dataclass(frozen=True)
class SegmentLines:
    """The network's segments as shapely lines in local metres, with a spatial index."""

    lines: npt.NDArray[np.object_]
    oneway: npt.NDArray[np.bool_]
    projection: LocalProjection
    tree: shapely.STRtree
    mid_x: FloatArray
    mid_y: FloatArray

    @classmethod
    def build(cls, coords: Sequence[Sequence[tuple[float, float]]], oneway: Sequence[bool],
              projection: LocalProjection) -> SegmentLines:
        sizes = np.fromiter((len(line) for line in coords), dtype=np.int64, count=len(coords))
        flat = np.asarray([p for line in coords for p in line], dtype=np.float64).reshape(-1, 2)
        return cls.from_vertices(flat, sizes, np.asarray(oneway, dtype=bool), projection)

    @classmethod
    def from_vertices(cls, flat: FloatArray, sizes: IntArray, oneway: npt.NDArray[np.bool_],
                      projection: LocalProjection) -> SegmentLines:
        """From every line's lon/lat vertices one after another (`sizes` per line)."""
        x, y = projection.xy(flat[:, 0], flat[:, 1])
        array = shapely.linestrings(np.column_stack([x, y]), indices=np.repeat(np.arange(sizes.size), sizes)) \
            if sizes.size else np.array([], dtype=object)
        mid_x, mid_y = _midpoints(x, y, sizes)
        return cls(np.asarray(array, dtype=object), np.asarray(oneway, dtype=bool), projection,
                   shapely.STRtree(array), mid_x, mid_y)

    def midpoints(self) -> tuple[FloatArray, FloatArray]:
        """Each segment's point halfway along it, in local metres."""
        return self.mid_x, self.mid_y


def _midpoints(x: FloatArray, y: FloatArray, sizes: IntArray) -> tuple[FloatArray, FloatArray]:
    """Halfway along each polyline (vertices flat in x, y; `sizes` per line), vectorised."""
    if sizes.size == 0:
        return np.zeros(0), np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    step = np.hypot(np.diff(x), np.diff(y))
    step[starts[1:] - 1] = 0.0                       # no step from one line's end to the next line's start
    cum = np.concatenate([[0.0], np.cumsum(step)])   # distance at each vertex, running over all lines
    ends = starts + sizes - 1
    target = (cum[starts] + cum[ends]) / 2
    after = np.clip(np.searchsorted(cum, target, side="left"), starts + 1, ends)
    before = after - 1
    span = cum[after] - cum[before]
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(span > 0, (target - cum[before]) / span, 0.0)
    return x[before] + f * (x[after] - x[before]), y[before] + f * (y[after] - y[before])


@dataclass(frozen=True)
class Snapped:
    segment: IntArray           # index into the segments, -1: not snapped (too far from any road)
    distance_m: FloatArray      # to the chosen segment (NaN when not snapped)
    heading_deg: FloatArray     # the vehicle's heading, NaN when it could not be told

    @property
    def unsnapped(self) -> int:
        return int((self.segment < 0).sum())


def headings(device: Sequence[str], t_s: FloatArray, x: FloatArray, y: FloatArray) -> FloatArray:
    """Each point's heading from its device's neighbouring points (input sorted by device, time)."""
    n = len(device)
    out = np.full(n, np.nan)
    dev = np.asarray(device, dtype=object)
    for i in range(n):
        before = i - 1 if i > 0 and dev[i - 1] == dev[i] and t_s[i] - t_s[i - 1] <= HEADING_MAX_GAP_S else i
        after = i + 1 if i + 1 < n and dev[i + 1] == dev[i] and t_s[i + 1] - t_s[i] <= HEADING_MAX_GAP_S else i
        dx, dy = x[after] - x[before], y[after] - y[before]
        if np.hypot(dx, dy) >= HEADING_MIN_MOVE_M:
            out[i] = float(bearing_deg(dx, dy))
    return out


def snap_points(lines: SegmentLines, device: Sequence[str], t_s: FloatArray, lon: FloatArray, lat: FloatArray,
                tolerance_m: float) -> Snapped:
    """Snap points (sorted by device, then time) to segments."""
    x, y = lines.projection.xy(lon, lat)
    heading = headings(device, np.asarray(t_s, dtype=np.float64), x, y)
    n = len(x)
    chosen = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.nan)
    if n == 0 or len(lines.lines) == 0:
        return Snapped(chosen, distance, heading)
    points = shapely.points(x, y)
    point_idx, seg_idx = lines.tree.query(points, predicate="dwithin", distance=tolerance_m)
    if point_idx.size == 0:
        return Snapped(chosen, distance, heading)
    candidates = lines.lines[seg_idx]
    pts = points[point_idx]
    d = shapely.distance(candidates, pts)
    along = shapely.line_locate_point(candidates, pts)
    length = shapely.length(candidates)
    a = shapely.line_interpolate_point(candidates, np.clip(along - 2.0, 0, length))
    b = shapely.line_interpolate_point(candidates, np.clip(along + 2.0, 0, length))
    seg_bearing = bearing_deg(shapely.get_x(b) - shapely.get_x(a), shapely.get_y(b) - shapely.get_y(a))
    h = heading[point_idx]
    diff = angle_between(h, seg_bearing)
    undirected = np.minimum(diff, 180.0 - diff)
    diff = np.where(lines.oneway[seg_idx], diff, undirected)
    disagree = np.isfinite(h) & ~(diff <= AGREE_DEG)
    order = np.lexsort((d, disagree, point_idx))        # per point: agreeing first, then nearest
    first = np.ones(order.size, dtype=bool)
    first[1:] = point_idx[order][1:] != point_idx[order][:-1]
    best = order[first]
    chosen[point_idx[best]] = seg_idx[best]
    distance[point_idx[best]] = d[best]
    return Snapped(chosen, distance, heading)
