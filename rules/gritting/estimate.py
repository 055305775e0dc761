"""Road surface temperature per segment from fixed sensors: inverse distance weighting.

Thermal mapping gives each segment an offset from its route's average
(docs/science.md#road-surface-temperature).
A sensor sits on a segment of its own, so its reading minus its own offset is the route
average near it; a segment's estimate is the distance-weighted mean (weights 1/d², d at
least 10 m) of those route averages from its 8 nearest sensors within `range_m`, plus the
segment's offset (farther sensors would add almost nothing under 1/d² and cost time).
Segments with no sensor in range take their route's average (the mean over the route's
covered segments), then the network's (the mean over all working sensors): the caller
records a warning naming them. Segments are grouped in grid cells, and each cell
looks only at the sensors that can be among its nearest: 50,000 segments and 500 sensors
take a fraction of a second, not the 25 million distances of the dense product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rules.psychro import OVER_ICE, OVER_WATER

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MIN_DISTANCE_M = 10.0
NEIGHBOURS = 8                   # IDW from the nearest sensors in range (a GIS "search neighbourhood")
CELLS_PER_SIDE = 16              # segments are grouped in about this many grid cells per side
MIN_CELL_M = 200.0


@dataclass(frozen=True)
class Weighted:
    values: list[FloatArray]     # per input matrix (k, m_i): the estimate (n, m_i), NaN without sensors
    used: IntArray               # (n,) sensors that contributed (within range, at most `neighbours`)
    nearest: list[IntArray]      # per mask in `nearest_masks`: (n,) the nearest such sensor in range, -1 none


def idw(seg_x: FloatArray, seg_y: FloatArray, sen_x: FloatArray, sen_y: FloatArray,
        matrices: Sequence[FloatArray], range_m: float,
        nearest_masks: Sequence[npt.NDArray[np.bool_]] = (), neighbours: int = NEIGHBOURS) -> Weighted:
    """Distance-weighted means of each sensor matrix (k, m_i) at every segment, from its `neighbours`
    nearest sensors within range; NaN sensor values are skipped.

    Segments are grouped in grid cells; a cell's candidate sensors are those that can be among
    the nearest for some point in it (triangle inequality from the cell's centre), so the work
    grows with segments x candidates, not segments x sensors."""
    n, k = seg_x.size, sen_x.size
    outs = [np.full((n, mat.shape[1]), np.nan) for mat in matrices]
    used = np.zeros(n, dtype=np.int64)
    nearest = [np.full(n, -1, dtype=np.int64) for _ in nearest_masks]
    if k == 0 or n == 0:
        return Weighted(outs, used, nearest)
    masks = [np.asarray(mask, dtype=bool) for mask in nearest_masks]
    stacked = _Stacked.of(matrices)
    take = min(neighbours, k)
    x0, y0 = float(seg_x.min()), float(seg_y.min())
    extent = max(float(seg_x.max()) - x0, float(seg_y.max()) - y0, 1.0)
    size = max(extent / CELLS_PER_SIDE, MIN_CELL_M)
    half_diagonal = size * np.sqrt(0.5)
    cx = np.floor((seg_x - x0) / size).astype(np.int64)
    cy = np.floor((seg_y - y0) / size).astype(np.int64)
    key = cx * (int(cy.max()) + 1) + cy
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for members in np.split(order, bounds):
        centre_x = x0 + (cx[members[0]] + 0.5) * size
        centre_y = y0 + (cy[members[0]] + 0.5) * size
        dc = np.hypot(sen_x - centre_x, sen_y - centre_y)
        kth = float(np.partition(dc, take - 1)[take - 1])
        cand = np.flatnonzero(dc <= min(kth, range_m + half_diagonal) + 2 * half_diagonal)
        if cand.size:
            _weigh(members, cand, seg_x, seg_y, sen_x, sen_y, stacked, matrices, outs, used, nearest, masks,
                   range_m, take)
    return Weighted(outs, used, nearest)


def _weigh(members: IntArray, cand: IntArray, seg_x: FloatArray, seg_y: FloatArray, sen_x: FloatArray,
           sen_y: FloatArray, stacked: _Stacked, matrices: Sequence[FloatArray], outs: list[FloatArray],
           used: IntArray, nearest: list[IntArray], masks: list[npt.NDArray[np.bool_]], range_m: float,
           take: int) -> None:
    d2 = (seg_x[members, None] - sen_x[None, cand]) ** 2 + (seg_y[members, None] - sen_y[None, cand]) ** 2
    if cand.size > take:
        pick = np.argpartition(d2, take - 1, axis=1)[:, :take]
    else:
        pick = np.broadcast_to(np.arange(cand.size), (members.size, cand.size))
    dk = np.take_along_axis(d2, pick, axis=1)
    inside = dk <= range_m * range_m
    w = np.where(inside, 1.0 / np.maximum(dk, MIN_DISTANCE_M * MIN_DISTANCE_M), 0.0)
    used[members] = inside.sum(axis=1)
    sensors = cand[pick]                                        # (segments, take) sensor indices
    sums = np.einsum("ck,ckm->cm", w, stacked.filled[sensors])   # every matrix's columns at once
    with np.errstate(invalid="ignore", divide="ignore"):
        for out, (start, stop), rows_known in zip(outs, stacked.spans, stacked.rows_known, strict=True):
            if rows_known is None:                              # NaN here and there: weigh value by value
                values = stacked.raw[sensors, start:stop]
                known = np.isfinite(values)
                total = np.einsum("ck,ckm->cm", w, known)
                out[members] = np.where(total > 0, sums[:, start:stop] / total, np.nan)
            else:                                               # whole sensors known or not: one total per row
                total = (w * rows_known[sensors]).sum(axis=1)[:, None]
                out[members] = np.where(total > 0, sums[:, start:stop] / total, np.nan)
    rows = np.arange(members.size)
    for out_nearest, mask in zip(nearest, masks, strict=True):
        ranked = np.where(inside & mask[sensors], dk, np.inf)
        best = ranked.argmin(axis=1)
        out_nearest[members] = np.where(np.isfinite(ranked[rows, best]), sensors[rows, best], -1)


@dataclass(frozen=True)
class _Stacked:
    """The matrices side by side, NaN as 0, and per matrix which sensors it knows when it knows a
    sensor's whole row or none of it (the common case: one total per segment, not per value)."""

    raw: FloatArray
    filled: FloatArray
    spans: list[tuple[int, int]]
    rows_known: list[FloatArray | None]

    @classmethod
    def of(cls, matrices: Sequence[FloatArray]) -> _Stacked:
        raw = np.concatenate(matrices, axis=1)
        finite = np.isfinite(raw)
        spans: list[tuple[int, int]] = []
        rows_known: list[FloatArray | None] = []
        start = 0
        for mat in matrices:
            stop = start + mat.shape[1]
            part = finite[:, start:stop]
            whole = np.asarray(part.all(axis=1), dtype=bool)
            uniform = bool((whole | ~part.any(axis=1)).all())
            spans.append((start, stop))
            rows_known.append(np.asarray(whole, dtype=np.float64) if uniform else None)
            start = stop
        return cls(raw, np.where(finite, raw, 0.0), spans, rows_known)


def fill_from_groups(values: FloatArray, covered: npt.NDArray[np.bool_], group: IntArray
                     ) -> tuple[FloatArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Rows not covered take their group's mean over covered rows (group -1: none), then the mean of all.

    Returns the filled values and which rows took the group's and which the overall mean."""
    out = values.copy()
    by_group = np.zeros(values.shape[0], dtype=bool)
    overall = np.zeros(values.shape[0], dtype=bool)
    missing = ~covered
    if not missing.any():
        return out, by_group, overall
    for g in np.unique(group[missing]):
        if g < 0:
            continue
        members = group == g
        donors = members & covered
        if donors.any():
            rows = members & missing
            out[rows] = np.nanmean(values[donors], axis=0)
            by_group |= rows
    rest = missing & ~by_group
    if rest.any() and covered.any():
        out[rest] = np.nanmean(values[covered], axis=0)
        overall |= rest
    return out, by_group, overall


def frost_point_from_dew(dew_point_c: npt.ArrayLike) -> FloatArray:
    """The temperature at which hoar frost forms from air of this dew point: over ice below 0 °C,
    the dew point itself above (dew, not frost). NaN stays NaN."""
    dew = np.asarray(dew_point_c, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ice = OVER_ICE.temperature_at(OVER_WATER.saturation(dew))
    return np.asarray(np.where(np.isfinite(dew) & (dew < 0), ice, dew), dtype=np.float64)
