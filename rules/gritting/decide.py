"""Treat, monitor or nothing per segment, with the reason; send or not per route.

Per segment, over the window's time grid (docs/gritting.md; docs/science.md#treatment-trigger):
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

from rules.gritting.rates import MATRICES, SNOW_HEAVY, SNOW_LIGHT, SNOW_NONE, RateMatrix, Rates, Salt, spread_rates

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
    salt: Salt = "dry"
    matrix: RateMatrix = MATRICES["nwsrg"]


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
    rst_low_c: FloatArray | None = None  # (n, m) the cautious bound of a projection (rst_c where none)

    @property
    def cautious(self) -> FloatArray:
        if self.rst_low_c is None:
            return self.rst_c
        return np.asarray(np.where(np.isfinite(self.rst_low_c), np.minimum(self.rst_low_c, self.rst_c), self.rst_c),
                          dtype=np.float64)


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
    rst_low_min: FloatArray          # the cautious bound's lowest RST (what the trigger saw)

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
    low = c.cautious                                 # the trigger looks at the cautious bound
    known = np.isfinite(rst).any(axis=1)
    with np.errstate(invalid="ignore"):
        min_index = np.where(known, np.nanargmin(np.where(np.isfinite(rst), rst, np.inf), axis=1), -1)
        low_index = np.where(known, np.nanargmin(np.where(np.isfinite(low), low, np.inf), axis=1), -1)
    rows = np.arange(n)
    rst_min = np.where(known, rst[rows, np.maximum(min_index, 0)], np.nan)
    low_min = np.where(known, low[rows, np.maximum(low_index, 0)], np.nan)
    rst_now = rst[:, 0] if m else np.full(n, np.nan)
    fp = c.frost_point_c
    columns = np.arange(m)[None, :]
    rain = columns >= c.rain_from[:, None]
    moist_now = ((c.state == DAMP) | (c.state == WET) | (c.state == ICE) | (c.state == UNKNOWN))[:, None]
    with np.errstate(invalid="ignore"):
        dew = low <= fp                                  # condensation or deposition on the surface
        moist = moist_now | rain | dew
        cold_moist = moist & (low <= s.trigger_c)
        hoar = dew & (low <= 0.0)
        watch_moist = moist & (low <= s.trigger_c + s.monitor_margin_c)
        near_frost = (low - fp <= s.frost_margin_c) & (low <= 1.0)
    icy = c.state == ICE
    snowing = (c.snow != SNOW_NONE) & (c.snow_from < m)
    frost = cold_moist.any(axis=1) | hoar.any(axis=1)
    treat = frost | icy | snowing
    hazard = np.stack([_first(cold_moist), _first(hoar), np.where(icy, 0, -1),
                       np.where(snowing, c.snow_from, -1)], axis=1)
    hazard_index = np.where(hazard >= 0, hazard, m + 1).min(axis=1)
    hazard_index = np.where(hazard_index > m, -1, hazard_index).astype(np.int64)
    monitor = ~treat & (watch_moist.any(axis=1) | near_frost.any(axis=1) | ~known)
    action = np.where(treat, TREAT, np.where(monitor, MONITOR, NONE)).astype(np.int64)

    # rates from the central projection's lowest RST (NaN, unknown: the coldest band for ice and snow)
    wet_column = (c.state == WET) | icy | (c.rain_from < m)
    rates = spread_rates(rst_min, wet_column, np.where(snowing, c.snow, SNOW_NONE), frost, s.salt, s.matrix, icy)
    rate = np.where(treat, rates.total_g_m2, 0.0)
    salt = rate * c.length_m * c.width_m / 1000.0
    fp_at_min = np.where(known, fp[rows, np.maximum(low_index, 0)], np.nan)

    reasons, surfaces = _explain(c, s, low, action, rst_min, min_index, low_min, low_index, fp_at_min, cold_moist,
                                 hoar, dew, icy, rates)
    return Decisions(action, reasons, rst_now, rst_min, min_index.astype(np.int64), fp_at_min, surfaces,
                     rate, np.where(treat, rates.per_pass_g_m2, 0.0), np.where(treat, rates.passes, 0),
                     salt, hazard_index, low_min)


class _Slot:
    """Stands for a per-segment number while a group's reason is written: it formats as a
    `str.format` field, so the group's text becomes a template filled in per segment."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __format__(self, spec: str) -> str:
        return f"{{{self.index}:{spec}}}"


RST_MIN, LOW_MIN, FROST_POINT, HOAR_RST, HOAR_POINT = (_Slot(i) for i in range(5))


def _dense(*columns: npt.NDArray[np.integer] | BoolArray) -> IntArray:
    """One dense integer code per distinct combination of the columns (small non-negative ints)."""
    code = np.zeros(columns[0].size, dtype=np.int64)
    for column in columns:
        column = np.asarray(column, dtype=np.int64)
        combined = code * (int(column.max()) + 2) + column + 1
        _, code = np.unique(combined, return_inverse=True)
        code = code.reshape(-1).astype(np.int64)
    return code


def _explain(c: Conditions, s: DecisionSettings, low: FloatArray, action: IntArray, rst_min: FloatArray,
             min_index: IntArray, low_min: FloatArray, low_index: IntArray, fp_at_min: FloatArray,
             cold_moist: BoolArray, hoar: BoolArray, dew: BoolArray, icy: BoolArray, rates: Rates
             ) -> tuple[list[str], list[str]]:
    """Every segment's reason and surface words. Segments whose reasons differ only in their
    numbers share one template, written once; each segment then fills in its own numbers."""
    n, m = c.rst_c.shape
    rows = np.arange(n)
    hoar_at, dew_first = _first(hoar), _first(dew)
    any_cold_moist = np.asarray(cold_moist.any(axis=1), dtype=bool)
    hoar_rst = np.where(hoar_at >= 0, low[rows, np.maximum(hoar_at, 0)], np.nan)
    hoar_fp = np.where(hoar_at >= 0, c.frost_point_c[rows, np.maximum(hoar_at, 0)], np.nan)
    snow_from = np.where(c.snow != SNOW_NONE, np.minimum(c.snow_from, m), m)
    with np.errstate(invalid="ignore"):
        bound_shown = np.isfinite(low_min) & (np.round(low_min, 1) < np.round(rst_min, 1)) & \
            (c.rst_low_c is not None)
        hoar_below_zero = np.asarray(hoar_fp < 0, dtype=bool)
    group = _dense(action, c.state, np.minimum(c.rain_from, m), dew_first, min_index, low_index, bound_shown,
                   np.isfinite(fp_at_min), any_cold_moist, hoar_at, hoar_below_zero, icy, c.snow, snow_from,
                   rates.code)
    first = np.full(int(group.max()) + 1 if n else 0, -1, dtype=np.int64)
    first[group[::-1]] = rows[::-1]                        # the first segment of each group
    clock = _Clock(c.times)
    templates, surface_texts = [], []
    for k in first.tolist():
        surface = _surface_words(int(c.state[k]), int(c.rain_from[k]), int(dew_first[k]), m, clock)
        lowest = _lowest_words(int(min_index[k]), int(low_index[k]), bool(bound_shown[k]), clock)
        templates.append(_reason(int(action[k]), surface, s, lowest, int(low_index[k]), bool(np.isfinite(fp_at_min[k])),
                                 bool(any_cold_moist[k]), (int(hoar_at[k]), bool(hoar_below_zero[k])), bool(icy[k]),
                                 (int(c.snow[k]), int(snow_from[k])), rates.words[rates.code[k]], clock, m))
        surface_texts.append(surface.split(" (")[0])
    values = zip(*((np.round(v, 1) + 0.0).tolist() for v in (rst_min, low_min, fp_at_min, hoar_rst, hoar_fp)),
                 strict=True)                             # + 0.0: -0.0 prints as +0.0
    groups = group.tolist()
    return [templates[g].format(*v) for g, v in zip(groups, values, strict=True)], [surface_texts[g] for g in groups]


def _lowest_words(at: int, low_at: int, bound_shown: bool, clock: _Clock) -> str:
    if at < 0:
        return ""
    text = f"lowest RST {RST_MIN:+.1f} °C {clock(at)}"
    if bound_shown:
        text += f" (cautious bound {LOW_MIN:+.1f} °C {clock(low_at)})"
    return text


def _surface_words(state: int, rain_from: int, dew_from: int, m: int, clock: _Clock) -> str:
    words = "unknown (taken as damp)" if state == UNKNOWN else STATES[state]
    if rain_from < m and state in (DRY, DAMP, UNKNOWN):
        words = f"wet (rain forecast {clock(rain_from)}; {words} now)"
    elif dew_from >= 0 and state == DRY:
        words = f"damp (dew or frost forms {clock(dew_from)}: RST at or below the dew point; dry now)"
    return words


def _reason(action: int, surface: str, s: DecisionSettings, lowest: str, at: int, fp_known: bool, cold_moist: bool,
            hoar: tuple[int, bool], icy: bool, snow: tuple[int, int], rate_row: str, clock: _Clock, m: int) -> str:
    """A group's reason, with _Slot fields where each segment's numbers go."""
    snow_class, snow_from = snow
    snowing = snow_class != SNOW_NONE and snow_from < m
    if at < 0 and not (icy or snowing):
        return ("no road surface temperature: no working sensor in range, no gritter reading and no forecast; "
                "check by patrol")
    frost_text = f"frost point {FROST_POINT:+.1f} °C" if fp_known else "frost point unknown (no humidity)"
    if action == TREAT:
        causes = []
        if snowing:
            kind = "light snow" if snow_class == SNOW_LIGHT else "medium/heavy snow or freezing rain"
            causes.append(f"{kind} forecast {clock(snow_from)}")
        if icy:
            causes.append("ice on the road now" + ("" if at >= 0 else " (road temperature unknown)"))
        hoar_at, below_zero = hoar
        if hoar_at >= 0:
            causes.append(f"hoar frost: RST {HOAR_RST:+.1f} °C {clock(hoar_at)} at or below the frost "
                          f"point {HOAR_POINT:+.1f} °C" if below_zero else
                          f"dew freezing: RST {HOAR_RST:+.1f} °C {clock(hoar_at)} below 0 °C and the dew "
                          f"point {HOAR_POINT:+.1f} °C")
        if cold_moist and hoar_at < 0:
            causes.append(f"{surface} road and {lowest}, at or below the trigger {s.trigger_c:+.1f} °C")
        elif cold_moist:
            causes.append(f"{surface} road, {lowest}")
        if not cold_moist and hoar_at < 0 and lowest:
            causes.append(lowest)
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
    winter: bool = True               # in the winter season a route blind on priority 1 is "unknown"


SEND, NOT_NEEDED, UNKNOWN_DECISION = "send", "not_needed", "unknown"


@dataclass(frozen=True)
class RouteDecision:
    route_id: str
    decision: str                     # send | not_needed | unknown (the duty officer decides)
    reason: str
    treat_segments: int
    salt_kg: float
    treat_km: float
    freeze_at: datetime | None
    unknown_segments: int

    @property
    def send(self) -> bool:
        return self.decision == SEND


def decide_route(route_id: str, members: IntArray, priority: IntArray, names: Sequence[str], d: Decisions,
                 length_m: FloatArray, times: Sequence[datetime], policy: RoutePolicy,
                 usable: BoolArray | None = None) -> RouteDecision:
    """Send the route, not needed, or unknown, from its segments' decisions (indices `members`).

    `usable`: per segment, whether its temperature counts for the fail-safe (default: any known
    temperature; the runner leaves out the network's average of sensors far away)."""
    treat = members[d.action[members] == TREAT]
    known = d.rst_min_index[members] >= 0 if usable is None else (d.rst_min_index[members] >= 0) & usable[members]
    blind = members[~known]
    blind_p1 = blind[priority[blind] <= 1]
    total_m = float(length_m[members].sum())
    treat_m = float(length_m[treat].sum())
    share = treat_m / total_m if total_m > 0 else 0.0
    urgent = treat[priority[treat] <= policy.send_priority]
    salt = float(d.salt_kg[treat].sum())
    hazard = np.where(d.hazard_index[treat] >= 0, d.hazard_index[treat], np.iinfo(np.int64).max)
    freeze_at = times[int(hazard.min())] if treat.size and hazard.min() < len(times) else None
    send = bool(urgent.size) or (treat.size > 0 and share > policy.send_share)
    blind_note = _blind_note(blind, blind_p1, names)
    unknown = policy.winter and blind_p1.size > 0
    if not treat.size:
        if unknown:
            why = (f"UNKNOWN: {blind_p1.size} priority-1 segment(s) have no usable road temperature "
                   f"({_names(blind_p1, names)}): no working sensor in range, gritter reading or forecast covers "
                   "them. "
                   "Decide by patrol or send; in the winter season this is never reported as not needed")
            return RouteDecision(route_id, UNKNOWN_DECISION, why, 0, 0.0, 0.0, None, int(blind.size))
        monitor = int((d.action[members] == MONITOR).sum())
        why = f"no segment needs treatment ({monitor} to monitor)" if monitor else "no segment needs treatment"
        return RouteDecision(route_id, NOT_NEEDED, why + blind_note, 0, 0.0, 0.0, None, int(blind.size))
    first = int(treat[np.argmin(hazard)])
    example = f"first: {names[first]}: {d.reason[first]}"
    if urgent.size:
        level = "1" if policy.send_priority == 1 else f"1..{policy.send_priority}"
        why = (f"send: {urgent.size} priority-{level} segment(s) need treatment ({treat.size} in all, "
               f"{share:.0%} of the route's length, {salt:,.0f} kg salt); {example}")
    elif send:
        why = (f"send: {treat.size} segment(s), {share:.0%} of the route's length (more than "
               f"{policy.send_share:.0%}) need treatment, {salt:,.0f} kg salt; {example}")
    elif unknown:
        why = (f"UNKNOWN: {treat.size} segment(s) need treatment but none of priority {policy.send_priority} or "
               f"higher and only {share:.0%} of the length, while {blind_p1.size} priority-1 segment(s) have no "
               f"usable road temperature ({_names(blind_p1, names)}): decide by patrol or send; {example}")
        return RouteDecision(route_id, UNKNOWN_DECISION, why, int(treat.size), salt, treat_m / 1000, freeze_at,
                             int(blind.size))
    else:
        why = (f"not sent: {treat.size} segment(s) need treatment but none of priority {policy.send_priority} "
               f"or higher and only {share:.0%} of the length (send above {policy.send_share:.0%}); "
               f"treat them locally or change the policy; {example}")
    return RouteDecision(route_id, SEND if send else NOT_NEEDED, why + blind_note, int(treat.size), salt,
                         treat_m / 1000, freeze_at, int(blind.size))


def _names(members: IntArray, names: Sequence[str], listed: int = 5) -> str:
    shown = [names[k] or "unnamed" for k in members[:listed].tolist()]
    more = f" and {members.size - listed} more" if members.size > listed else ""
    return ", ".join(shown) + more


def _blind_note(blind: IntArray, blind_p1: IntArray, names: Sequence[str]) -> str:
    if not blind.size:
        return ""
    p1 = f", {blind_p1.size} of priority 1" if blind_p1.size else ""
    return f"; {blind.size} segment(s) without any temperature{p1} ({_names(blind, names)}): patrol them"


def latest_start(freeze_at: datetime | None, duration_h: float) -> datetime | None:
    """When the route must start so that treatment ends before the freeze."""
    if freeze_at is None:
        return None
    return freeze_at - timedelta(hours=duration_h)


__all__ = ["ACTIONS", "DAMP", "DRY", "ICE", "MONITOR", "NONE", "NOT_NEEDED", "SEND", "SNOW_HEAVY", "SNOW_LIGHT",
           "SNOW_NONE", "STATES", "TREAT", "UNKNOWN", "UNKNOWN_DECISION", "WET", "Conditions", "DecisionSettings",
           "Decisions", "RouteDecision", "RoutePolicy", "decide_route", "decide_segments", "latest_start"]
