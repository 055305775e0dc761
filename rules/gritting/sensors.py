"""Which fixed road sensors to trust tonight, and why the others are left out.

A sensor is dead (excluded and listed with the reason) when it has not reported for
`stale_h` hours, reports no surface temperature, or reads something a road cannot be
(outside -35..+60 degC, or a jump of more than 8 degC between readings minutes apart).

**Stuck** (a frozen driver or a disconnected probe repeats one value) is judged against
the neighbours, not by flatness alone: an overcast night holds an honest road steady for
hours. A sensor flat for two hours or more is stuck when a working neighbour within range
moved by `NEIGHBOUR_MOVED_C` or more over the same hours, or, with no neighbour to compare,
when it has been flat for `STUCK_ALONE_HOURS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
PLAUSIBLE_RST_C = (-35.0, 60.0)
STUCK_HOURS = 2.0
STUCK_MIN_READINGS = 6
STUCK_ALONE_HOURS = 6.0          # flat this long with no neighbour to compare: stuck
NEIGHBOUR_MOVED_C = 0.5          # a neighbour that moved this much while this one stayed flat
MAX_JUMP_C = 8.0
JUMP_WITHIN_H = 0.5


@dataclass(frozen=True)
class SensorHistory:
    """One fixed sensor's recent readings (times in hours since the epoch, oldest first)."""

    device_id: str
    lon: float
    lat: float
    t_h: FloatArray
    rst_c: FloatArray
    air_c: FloatArray = field(default_factory=lambda: np.zeros(0))
    rh_pct: FloatArray = field(default_factory=lambda: np.zeros(0))
    states: tuple[str | None, ...] = ()
    segment_id: str | None = None       # the segment it watches (registry), for its own offset
    last_seen_h: float | None = None    # its newest reading ever, when older than the readings given

    def latest(self, values: FloatArray) -> float:
        """The newest finite value of a column (NaN when none)."""
        if values.size != self.t_h.size:
            return float("nan")
        ok = np.flatnonzero(np.isfinite(values))
        return float(values[ok[-1]]) if ok.size else float("nan")

    @property
    def latest_state(self) -> str | None:
        known = [s for s in self.states if s]
        return known[-1] if known else None


def why_dead(sensor: SensorHistory, now_h: float, stale_h: float) -> str | None:
    """The reason to leave a sensor out tonight, or None to use it."""
    t, rst = sensor.t_h, sensor.rst_c
    last = float(t[-1]) if t.size else sensor.last_seen_h
    if last is None:
        return "no reading at all"
    age = now_h - last
    if age > stale_h:
        return f"last reading {age:.1f} h ago (more than {stale_h:g} h)"
    ok = np.isfinite(rst)
    if not ok.any():
        return "reports no surface temperature"
    if not (t[ok][-1] >= now_h - stale_h):
        return f"no surface temperature in the last {stale_h:g} h"
    low, high = PLAUSIBLE_RST_C
    latest = float(rst[ok][-1])
    if not low <= latest <= high:
        return f"implausible surface temperature {latest:g} °C (outside {low:g}..{high:g})"
    tt, yy = t[ok], rst[ok]
    jumps = (np.abs(np.diff(yy)) > MAX_JUMP_C) & (np.diff(tt) <= JUMP_WITHIN_H)
    recent = tt[1:] >= now_h - stale_h
    if (jumps & recent).any():
        k = int(np.flatnonzero(jumps & recent)[-1])
        return (f"implausible jump from {yy[k]:g} to {yy[k + 1]:g} °C in "
                f"{(tt[k + 1] - tt[k]) * 60:.0f} min")
    return None


def flat_hours(sensor: SensorHistory, now_h: float) -> float:
    """How long the surface temperature has read exactly the same up to now (0 when it moves or
    when there are too few readings to tell)."""
    ok = np.isfinite(sensor.rst_c) & (sensor.t_h <= now_h)
    t, y = sensor.t_h[ok], sensor.rst_c[ok]
    if t.size < STUCK_MIN_READINGS:
        return 0.0
    moved = np.flatnonzero(y != y[-1])
    since = t[moved[-1] + 1] if moved.size else t[0]
    count = t.size - (moved[-1] + 1 if moved.size else 0)
    return float(t[-1] - since) if count >= STUCK_MIN_READINGS else 0.0


def movement(sensor: SensorHistory, since_h: float, now_h: float) -> float:
    """The range of the surface temperature over [since_h, now_h] (0 with fewer than two readings)."""
    window = np.isfinite(sensor.rst_c) & (sensor.t_h >= since_h) & (sensor.t_h <= now_h)
    return float(np.ptp(sensor.rst_c[window])) if window.sum() >= 2 else 0.0


def why_stuck(flat_h: float, latest_c: float, neighbour_moved_c: float | None) -> str | None:
    """The reason to call a flat sensor stuck, given how far its neighbours moved meanwhile
    (None: no working neighbour in range)."""
    if flat_h < STUCK_HOURS:
        return None
    if neighbour_moved_c is not None and neighbour_moved_c >= NEIGHBOUR_MOVED_C:
        return (f"stuck at {latest_c:g} °C for {flat_h:.1f} h while a neighbour moved {neighbour_moved_c:.1f} °C")
    if neighbour_moved_c is None and flat_h >= STUCK_ALONE_HOURS:
        return f"stuck at {latest_c:g} °C for {flat_h:.1f} h (no neighbour in range to compare)"
    return None
