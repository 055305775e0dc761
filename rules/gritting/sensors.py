"""Which fixed road sensors to trust tonight, and why the others are left out.

A sensor is dead (excluded and listed with the reason) when it has not reported for
`stale_h` hours, reports no surface temperature, is stuck (the same value for two hours
or more: a frozen driver or a disconnected probe), or reads something a road cannot be
(outside -35..+60 degC, or a jump of more than 8 degC between readings minutes apart).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
PLAUSIBLE_RST_C = (-35.0, 60.0)
STUCK_HOURS = 2.0
STUCK_MIN_READINGS = 6
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
    window = tt >= now_h - STUCK_HOURS - 1.0
    if window.sum() >= STUCK_MIN_READINGS and np.ptp(tt[window]) >= STUCK_HOURS and np.ptp(yy[window]) == 0:
        return f"stuck at {latest:g} °C for {np.ptp(tt[window]):.1f} h"
    return None
