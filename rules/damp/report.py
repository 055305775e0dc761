"""The landlord evidence report: one printable HTML page with inline SVG charts, no scripts.

For a chosen period: the risk level day by day, indoor temperature and humidity, the
humidity at the coldest wall against the 80 % mould line, the mould index, hours at or
above 80 % and of condensation, the latest reasons in plain words, data faults, and the
Awaab's Law timelines that apply to social landlords in England (in force 27 October 2025).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from rules.cases import clocks
from rules.damp import risk
from rules.damp.quality import HourlySeries
from rules.damp.risk import Assessment, HomeInputs
from rules.damp.rolling import HourInput, RollingDamp

log = logging.getLogger("rules.damp.report")

FloatArray = npt.NDArray[np.float64]
LEVEL_COLOURS = {"none": "#2e7d32", "low": "#9e9d24", "medium": "#f9a825", "high": "#ef6c00",
                 "severe": "#c62828", "unknown": "#9e9e9e"}
# the lengths come from the clocks the cases use (rules/cases/clocks.py): one place for the law
AWAAB_INVESTIGATE_WORKING_DAYS = next(r.working_days for r in clocks.SIGNIFICANT if r.key == "investigation")
AWAAB_SUMMARY_WORKING_DAYS = next(r.working_days for r in clocks.SIGNIFICANT if r.key == "written_summary")
AWAAB_EMERGENCY = timedelta(hours=next(r.hours for r in clocks.EMERGENCY if r.key == "emergency_investigation"))


@dataclass(frozen=True)
class EvidenceInput:
    home_label: str
    hours: npt.NDArray[np.datetime64]       # datetime64[h], the period
    indoor_t: FloatArray
    indoor_rh: FloatArray
    surface_rh: FloatArray
    mould_index: FloatArray
    daily_levels: list[tuple[date, str]]
    latest: Assessment | None
    generated_at: datetime
    reported_on: date | None = None         # when the damp was reported to the landlord
    social_landlord: bool = True
    holidays: frozenset[date] = field(default_factory=frozenset)


def working_days_after(start: date, days: int, holidays: frozenset[date] = frozenset()) -> date:
    """The date `days` working days after `start` (weekends and the given holidays skipped)."""
    return clocks.WorkingDays(holidays).add_days(start, days)


def awaab_deadlines(reported_on: date, holidays: frozenset[date] = frozenset()) -> list[tuple[str, str]]:
    """Awaab's Law duties from the day damp and mould was reported, as (duty, by when).

    Working days skip weekends, England's bank holidays and any further `holidays` given.
    """
    calendar = clocks.WorkingDays.england().also_closed(holidays)
    investigate = calendar.add_days(reported_on, AWAAB_INVESTIGATE_WORKING_DAYS)
    summary = calendar.add_days(investigate, AWAAB_SUMMARY_WORKING_DAYS)
    return [
        ("Emergency hazards investigated (then made safe within 24 hours of the investigation)",
         f"within 24 hours of the report: by {reported_on + AWAAB_EMERGENCY:%a %d %b %Y}"),
        ("Significant damp and mould investigated",
         f"within {AWAAB_INVESTIGATE_WORKING_DAYS} working days: by {investigate:%a %d %b %Y}"),
        ("Written summary of the findings to the tenant",
         f"within {AWAAB_SUMMARY_WORKING_DAYS} working days of the investigation: by {summary:%a %d %b %Y} "
         f"if it ends on the last allowed day"),
    ]


def daily_levels(series: HourlySeries, inputs: HomeInputs, home: int = 0) -> list[tuple[date, str]]:
    """The risk level at the end of every day, from the rolling state (one home)."""
    row = slice(home, home + 1)
    rolling = RollingDamp(inputs.f_rsi[row], inputs.classes.select(row))
    out: list[tuple[date, str]] = []
    for h, hour in enumerate(series.hours):
        rolling.push_hour(HourInput.from_series(series, h, inputs.outdoor_c[row, h], homes=row))
        if (hour + 1).astype("datetime64[D]") != hour.astype("datetime64[D]"):
            level = str(risk.levels(rolling.metrics(), rolling.state.index)[0])
            out.append((hour.astype("datetime64[D]").item(), level))
    return out


def svg_lines(hours: npt.NDArray[np.datetime64], lines: list[tuple[str, FloatArray, str]],
              y_range: tuple[float, float], marks: tuple[tuple[float, str], ...] = (),
              width: int = 720, height: int = 180) -> str:
    """A line chart as inline SVG: each line (label, values, colour), horizontal marks (value, label)."""
    left, bottom = 40, 20
    lo, hi = y_range
    n = max(len(hours) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - 10) * i / n

    def y(v: float) -> float:
        return 10 + (height - bottom - 10) * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    names = ", ".join(label for label, _, _ in lines)
    parts = [_svg_open(width, height, f"chart of {names}" + (f" from {str(hours[0])[:10]} to {str(hours[-1])[:10]}"
                                                              if len(hours) else "")),
             f'<rect x="{left}" y="10" width="{width - left - 10}" height="{height - bottom - 10}" '
             f'fill="none" stroke="#bbb"/>']
    for value, label in marks:
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="#c62828" stroke-dasharray="4 3"/><text x="{width - 12}" y="{y(value) - 3:.1f}" '
                     f'font-size="10" text-anchor="end" fill="#c62828">{html.escape(label)}</text>')
    for tick in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 3:.1f}" font-size="10" text-anchor="end">{tick:g}</text>')
    for label, values, colour in lines:
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if np.isfinite(v):
                runs[-1].append(f"{x(i):.1f},{y(float(v)):.1f}")
            elif runs[-1]:
                runs.append([])
        for points in (r for r in runs if len(r) > 1):
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{" ".join(points)}">'
                         f'<title>{html.escape(label)}</title></polyline>')
    if len(hours):
        parts.append(f'<text x="{left}" y="{height - 4}" font-size="10">{str(hours[0])[:10]}</text>'
                     f'<text x="{width - 10}" y="{height - 4}" font-size="10" text-anchor="end">'
                     f'{str(hours[-1])[:10]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_timeline(levels: list[tuple[date, str]], width: int = 720, height: int = 34) -> str:
    """One coloured block per day, labelled with its level on hover and in the legend."""
    if not levels:
        return "<p>No days to show.</p>"
    step = (width - 40) / len(levels)
    blocks = [f'<rect x="{40 + i * step:.1f}" y="4" width="{max(step - 1, 1):.1f}" height="{height - 8}" '
              f'fill="{LEVEL_COLOURS[level]}"><title>{day:%d %b}: {level}</title></rect>'
              for i, (day, level) in enumerate(levels)]
    summary = ", ".join(f"{day:%d %b} {level}" for day, level in levels)
    return _svg_open(width, height, f"risk level by day: {summary}") + "".join(blocks) + "</svg>"


def _svg_open(width: int, height: int, label: str) -> str:
    """An SVG that shrinks to a narrow screen (a phone at 320 px) and says what it shows."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
            f'style="max-width:{width}px;height:auto" role="img" aria-label="{html.escape(label)}">')



def charts_html(data: EvidenceInput, *, heading: str = "h2") -> str:
    """The readings as charts, each under a `heading`: the risk level day by day with its key,
    humidity at the coldest wall, indoor temperature and humidity, the mould index (the evidence
    report's and a case's evidence pack's)."""
    esc = html.escape
    legend = " ".join(f'<span class="key" style="background:{c}"></span>{esc(k)}' for k, c in LEVEL_COLOURS.items())

    def titled(title: str) -> str:
        return f"<{heading}>{title}</{heading}>"

    return "".join([
        f"{titled('Risk level, day by day')}{svg_timeline(data.daily_levels)}<p>{legend}</p>",
        titled("Humidity at the coldest wall")
        + svg_lines(data.hours, [("surface humidity %", data.surface_rh, "#1565c0")], (40, 100),
                    ((80.0, "80 %: mould can grow"), (100.0, "100 %: condensation"))),
        titled("Indoor temperature and humidity")
        + svg_lines(data.hours, [("indoor humidity %", data.indoor_rh, "#00838f")], (20, 100))
        + svg_lines(data.hours, [("indoor temperature °C", data.indoor_t, "#ad1457")], (0, 30),
                    ((16.0, "16 °C"),)),
        titled("Mould index (VTT model)")
        + svg_lines(data.hours, [("mould index", data.mould_index, "#4e342e")], (0, 6),
                    ((1.0, "1: growth under a microscope"), (3.0, "3: visible"))),
    ])

def evidence_report(data: EvidenceInput) -> str:
    """The whole page as HTML."""
    with np.errstate(invalid="ignore"):
        damp_hours = int(np.sum(data.surface_rh >= 80))
        wet_hours = int(np.sum(data.surface_rh >= risk.CONDENSATION_RH - 1e-9))
    measured = int(np.isfinite(data.surface_rh).sum())
    worst = max((lvl for _, lvl in data.daily_levels if lvl in risk.LEVELS), key=risk.LEVELS.index, default="unknown")
    counts = {lvl: sum(1 for _, day_level in data.daily_levels if day_level == lvl)
              for lvl in (*risk.LEVELS, risk.UNKNOWN)}
    esc = html.escape
    start, end = (str(data.hours[0])[:10], str(data.hours[-1])[:10]) if len(data.hours) else ("", "")
    latest = data.latest
    rows = [
        ("Period", f"{start} to {end} ({len(data.hours)} hours, {measured} with usable readings)"),
        ("Hours with the coldest wall at 80 % humidity or more", f"{damp_hours}"),
        ("Hours of condensation on the coldest wall", f"{wet_hours}"),
        ("Mould index at the end (0 to 6)", f"{float(data.mould_index[-1]):.1f}" if len(data.mould_index) else "-"),
        ("Highest daily risk level", worst),
        ("Days at each level", ", ".join(f"{k} {v}" for k, v in counts.items() if v)),
    ]
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<title>Damp and mould evidence: {esc(data.home_label)}</title>",
        "<style>body{font-family:sans-serif;max-width:760px;margin:1em auto;padding:0 .5em;color:#222;"
        "overflow-wrap:anywhere}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        ".key{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px}"
        "@media print{body{margin:0}h2{page-break-after:avoid}svg{page-break-inside:avoid}}</style></head><body>",
        f"<h1>Damp and mould evidence</h1><p><strong>{esc(data.home_label)}</strong><br>"
        f"Generated {data.generated_at:%d %b %Y %H:%M} UTC from a CityOps frog sensor (temperature and "
        f"humidity every 5 minutes).</p>",
        "<h2>Summary</h2><table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
        + "</table>",
        charts_html(data, heading="h2"),
    ]
    if latest is not None:
        parts.append("<h2>Why, in plain words</h2><ul>" + "".join(f"<li>{esc(r)}</li>" for r in latest.reasons)
                     + "</ul>")
        if latest.faults:
            parts.append("<h2>About the data</h2><ul>" + "".join(f"<li>{esc(f)}</li>" for f in latest.faults)
                         + "</ul>")
    parts.append("<h2>Awaab's Law (social housing in England, from 27 October 2025)</h2>")
    if not data.social_landlord:
        parts.append("<p>These timelines bind social landlords; private landlords have duties under the "
                     "Housing Health and Safety Rating System instead.</p>")
    if data.reported_on is not None:
        parts.append(f"<p>Damp and mould reported to the landlord on {data.reported_on:%a %d %b %Y}:</p><table>"
                     + "".join(f"<tr><th>{esc(duty)}</th><td>{esc(when)}</td></tr>"
                               for duty, when in awaab_deadlines(data.reported_on, data.holidays)) + "</table>"
                     "<p>Working days skip weekends and bank holidays in England"
                     + (" and the other listed closed days" if data.holidays else "") + ".</p>")
    else:
        parts.append("<p>Significant damp and mould must be investigated within 10 working days of being "
                     "reported, a written summary given within 3 working days of the investigation, and "
                     "emergency hazards made safe within 24 hours.</p>")
    parts.append("<p><small>Surface conditions use the temperature factor method of BS EN ISO 13788; the mould "
                 "index is the VTT (Hukka-Viitanen) model; the 30-day criterion is ASHRAE 160.</small></p>"
                 "</body></html>")
    return "\n".join(parts)
