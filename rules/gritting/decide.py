"""Treat, monitor or nothing per segment, with the reason; send or not per route.

Per segment, over the window's time grid (DESIGN.md section 5):
- **treat** when
  - snow or freezing rain is forecast (the snow rows of the rate table), or
  - the road is wet or damp (now, or from forecast rain, or from dew forming: RST at or below
    the dew point) and its RST reaches the trigger (default +1.0 °C), or
  - hoar frost: RST at or below the frost point while below 0 °C. The frost point (over ice)
    is above the dew point below 0 °C, so frost forms on a dry road before dew would, or
  - the surface is icy now;
- **monitor** when within `monitor_margin_c` above the trigger on a wet or damp road, or on a
  dry road within `frost_margin_c` of the frost point below +1 °C, or when there is no
  temperature for the segment at all (a patrol must look);
- **none** otherwise, also with its reason. A segment with no surface state known is taken
  as damp (precautionary), and the reason says so.
Salt = rate (g/m², all treatments) x length x width / 1000 kg.

Per route: send when a segment of priority `send_priority` or more urgent must be treated,
or more than `send_share` of its length; the latest start is the first hazard on a segment
to treat less the time to drive the route (`duration_h`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from rules.gritting.rates import SNOW_HEAVY, SNOW_LIGHT, SNOW_NONE, spread_rates

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

STATES = ("dry", "damp", "wet", "ice")
DRY, DAMP, WET, ICE, UNKNOWN = 0, 1, 2, 3, -1
NONE, MONITOR, TREAT = 0, 1, 2
ACTIONS = ("none", "monitor", "treat")


@dataclass(frozen=True)
class DecisionSettings:
    trigger_c: float = 1.0
    monitor_margin_c: float = 1.0
    frost_margin_c: float = 1.0
    prewet: bool = False


@dataclass(frozen=True)
class Conditions:
    """What is known or forecast per segment (n) at each grid time (m)."""

    times: Sequence[datetime]        # the grid, times[0] = now
    rst_c: FloatArray                # (n, m), NaN: unknown
    frost_point_c: FloatArray        # (n, m): over ice below 0 °C, the dew point above; NaN unknown
    state: IntArray                  # (n,) DRY/DAMP/WET/ICE now, UNKNOWN
    rain_from: IntArray              # (n,) first grid index with rain or snow forecast, m if none
    snow: IntArray                   # (n,) SNOW_NONE / SNOW_LIGHT / SNOW_HEAVY over the window
    snow_from: IntArray              # (n,) first grid index of that snow or freezing rain, m if none
    length_m: FloatArray
    width_m: FloatArray


@dataclass(frozen=True)
class Decisions:
    action: IntArray
    reason: list[str]
    rst_now: FloatArray
    rst_min: FloatArray
    rst_min_index: IntArray          # -1 when unknown
    frost_point_at_min: FloatArray
    surface: list[str]               # the state the decision used, in words
    rate_g_m2: FloatArray            # all treatments together (2 x 15 -> 30)
    per_pass_g_m2: FloatArray
    treatments: IntArray
    salt_kg: FloatArray
    hazard_index: IntArray           # first grid index where treatment is needed, -1 none

    def hazard_at(self, k: int, times: Sequence[datetime]) -> datetime | None:
        return times[self.hazard_index[k]] if self.hazard_index[k] >= 0 else None


def _first(mask: BoolArray) -> IntArray:
    """First True per row, -1 when none."""
    any_ = mask.any(axis=1)
    return np.where(any_, mask.argmax(axis=1), -1).astype(np.int64)


class _Clock:
    """'now' / 'at HH:MM' for grid indices, formatted once."""

    def __init__(self, times: Sequence[datetime]) -> None:
        self.labels = ["now", *(f"at {t:%H:%M}" for t in times[1:])]

    def __call__(self, index: int) -> str:
        return self.labels[index]


def decide_segments(c: Conditions, s: DecisionSettings) -> Decisions:
    n, m = c.rst_c.shape
    rst = c.rst_c
    known = np.isfinite(rst).any(axis=1)
    with np.errstate(invalid="ignore"):
        min_index = np.where(known, np.nanargmin(np.where(np.isfinite(rst), rst, np.inf), axis=1), -1)
    rows = np.arange(n)
    rst_min = np.where(known, rst[rows, np.maximum(min_index, 0)], np.nan)
    rst_now = rst[:, 0] if m else np.full(n, np.nan)
    fp = c.frost_point_c
    columns = np.arange(m)[None, :]
    rain = columns >= c.rain_from[:, None]
    moist_now = ((c.state == DAMP) | (c.state == WET) | (c.state == ICE) | (c.state == UNKNOWN))[:, None]
    with np.errstate(invalid="ignore"):
        dew = rst <= fp                                  # condensation or deposition on the surface
        moist = moist_now | rain | dew
        cold_moist = moist & (rst <= s.trigger_c)
        hoar = dew & (rst <= 0.0)
        watch_moist = moist & (rst <= s.trigger_c + s.monitor_margin_c)
        near_frost = (rst - fp <= s.frost_margin_c) & (rst <= 1.0)
    icy = c.state == ICE
    snowing = (c.snow != SNOW_NONE) & (c.snow_from < m)
    frost = cold_moist.any(axis=1) | hoar.any(axis=1) | icy
    treat = frost | snowing
    hazard = np.stack([_first(cold_moist), _first(hoar), np.where(icy, 0, -1),
                       np.where(snowing, c.snow_from, -1)], axis=1)
    hazard_index = np.where(hazard >= 0, hazard, m + 1).min(axis=1)
    hazard_index = np.where(hazard_index > m, -1, hazard_index).astype(np.int64)
    monitor = ~treat & (watch_moist.any(axis=1) | near_frost.any(axis=1) | ~known)
    action = np.where(treat, TREAT, np.where(monitor, MONITOR, NONE)).astype(np.int64)

    wet_column = (c.state == WET) | icy | (c.rain_from < m)
    rates = spread_rates(rst_min, wet_column, np.where(snowing, c.snow, SNOW_NONE), frost, s.prewet)
    rate = np.where(treat, rates.total_g_m2, 0.0)
    salt = rate * c.length_m * c.width_m / 1000.0
    fp_at_min = np.where(known, fp[rows, np.maximum(min_index, 0)], np.nan)

    reasons: list[str] = []
    surfaces: list[str] = []
    hoar_first, any_cold_moist, dew_first = _first(hoar), cold_moist.any(axis=1), _first(dew)
    clock = _Clock(c.times)
    for k in range(n):
        surface = _surface_words(int(c.state[k]), int(c.rain_from[k]), int(dew_first[k]), m, clock)
        surfaces.append(surface.split(" (")[0])
        reasons.append(_reason(k, int(action[k]), surface, c, s, float(rst_min[k]), int(min_index[k]),
                               float(fp_at_min[k]), bool(any_cold_moist[k]), int(hoar_first[k]), bool(icy[k]),
                               rates.row[k], clock))
    return Decisions(action, reasons, rst_now, rst_min, min_index.astype(np.int64), fp_at_min, surfaces,
                     rate, np.where(treat, rates.per_pass_g_m2, 0.0), np.where(treat, rates.passes, 0),
                     salt, hazard_index)


def _surface_words(state: int, rain_from: int, dew_from: int, m: int, clock: _Clock) -> str:
    words = "unknown (taken as damp)" if state == UNKNOWN else STATES[state]
    if rain_from < m and state in (DRY, DAMP, UNKNOWN):
        words = f"wet (rain forecast {clock(rain_from)}; {words} now)"
    elif dew_from >= 0 and state == DRY:
        words = f"damp (dew or frost forms {clock(dew_from)}: RST at or below the dew point; dry now)"
    return words


def _reason(k: int, action: int, surface: str, c: Conditions, s: DecisionSettings, rst_min: float, at: int,
            fp: float, cold_moist: bool, hoar_at: int, icy: bool, rate_row: str, clock: _Clock) -> str:
    if at < 0:
        return ("no road surface temperature: no working sensor in range, no gritter reading and no forecast; "
                "check by patrol")
    lowest = f"lowest RST {rst_min:+.1f} °C {clock(at)}"
    frost_text = f"frost point {fp:+.1f} °C" if np.isfinite(fp) else "frost point unknown (no humidity)"
    if action == TREAT:
        causes = []
        if c.snow[k] != SNOW_NONE and c.snow_from[k] < len(c.times):
            kind = "light snow" if c.snow[k] == SNOW_LIGHT else "medium/heavy snow or freezing rain"
            causes.append(f"{kind} forecast {clock(int(c.snow_from[k]))}")
        if icy:
            causes.append("ice on the road now")
        if hoar_at >= 0:
            point = float(c.frost_point_c[k, hoar_at])
            causes.append(f"hoar frost: RST {c.rst_c[k, hoar_at]:+.1f} °C {clock(hoar_at)} at or below the frost "
                          f"point {point:+.1f} °C" if point < 0 else
                          f"dew freezing: RST {c.rst_c[k, hoar_at]:+.1f} °C {clock(hoar_at)} below 0 °C and the dew "
                          f"point {point:+.1f} °C")
        if cold_moist and hoar_at < 0:
            causes.append(f"{surface} road and {lowest}, at or below the trigger {s.trigger_c:+.1f} °C")
        elif cold_moist:
            causes.append(f"{surface} road, {lowest}")
        return f"{'; '.join(causes)}; spread {rate_row}"
    if action == MONITOR:
        if surface.startswith("dry"):
            return f"dry road near the frost point: {lowest}, {frost_text} (within {s.frost_margin_c:g} °C)"
        return (f"{surface} road, {lowest}: within {s.monitor_margin_c:g} °C above the trigger "
                f"{s.trigger_c:+.1f} °C")
    if surface.startswith("dry"):
        return f"dry road, {lowest}, {frost_text}: no frost or ice expected"
    return f"{surface} road, {lowest}: above the trigger {s.trigger_c:+.1f} °C and its margin"


# --- routes ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RoutePolicy:
    send_priority: int = 1
    send_share: float = 0.2


@dataclass(frozen=True)
class RouteDecision:
    route_id: str
    send: bool
    reason: str
    treat_segments: int
    salt_kg: float
    treat_km: float
    freeze_at: datetime | None
    unknown_segments: int

    @property
    def decision(self) -> str:
        return "send" if self.send else "not_needed"


def decide_route(route_id: str, members: IntArray, priority: IntArray, names: Sequence[str], d: Decisions,
                 length_m: FloatArray, times: Sequence[datetime], policy: RoutePolicy) -> RouteDecision:
    """Send the route or not, from its segments' decisions (indices `members`)."""
    treat = members[d.action[members] == TREAT]
    unknown = int((d.rst_min_index[members] < 0).sum())
    total_m = float(length_m[members].sum())
    treat_m = float(length_m[treat].sum())
    share = treat_m / total_m if total_m > 0 else 0.0
    urgent = treat[priority[treat] <= policy.send_priority]
    salt = float(d.salt_kg[treat].sum())
    hazards = [d.hazard_index[k] for k in treat if d.hazard_index[k] >= 0]
    freeze_at = times[min(hazards)] if hazards else None
    send = bool(urgent.size) or (treat.size > 0 and share > policy.send_share)
    unknown_note = f"; {unknown} segment(s) without any temperature: patrol them" if unknown else ""
    if not treat.size:
        monitor = int((d.action[members] == MONITOR).sum())
        why = f"no segment needs treatment ({monitor} to monitor)" if monitor else "no segment needs treatment"
        return RouteDecision(route_id, False, why + unknown_note, 0, 0.0, 0.0, None, unknown)
    first = int(treat[np.argmin([d.hazard_index[k] if d.hazard_index[k] >= 0 else 10**9 for k in treat])])
    example = f"first: {names[first]}: {d.reason[first]}"
    if urgent.size:
        level = "1" if policy.send_priority == 1 else f"1..{policy.send_priority}"
        why = (f"send: {urgent.size} priority-{level} segment(s) need treatment ({treat.size} in all, "
               f"{share:.0%} of the route's length, {salt:,.0f} kg salt); {example}")
    elif send:
        why = (f"send: {treat.size} segment(s), {share:.0%} of the route's length (more than "
               f"{policy.send_share:.0%}) need treatment, {salt:,.0f} kg salt; {example}")
    else:
        why = (f"not sent: {treat.size} segment(s) need treatment but none of priority {policy.send_priority} "
               f"or higher and only {share:.0%} of the length (send above {policy.send_share:.0%}); "
               f"treat them locally or change the policy; {example}")
    return RouteDecision(route_id, send, why + unknown_note, int(treat.size), salt, treat_m / 1000, freeze_at,
                         unknown)


def latest_start(freeze_at: datetime | None, duration_h: float) -> datetime | None:
    """When the route must start so that treatment ends before the freeze."""
    if freeze_at is None:
        return None
    return freeze_at - timedelta(hours=duration_h)


__all__ = ["ACTIONS", "DAMP", "DRY", "ICE", "MONITOR", "NONE", "SNOW_HEAVY", "SNOW_LIGHT", "SNOW_NONE", "STATES",
           "TREAT", "UNKNOWN", "WET", "Conditions", "DecisionSettings", "Decisions", "RouteDecision", "RoutePolicy",
           "decide_route", "decide_segments", "latest_start"]
