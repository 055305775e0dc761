"""A damp and mould case's evidence pack: one printable HTML page and its CSV, both pure.

The page holds the home, the case, each Awaab's Law clock and whether it was met (met, met
late, overdue, ...), the case timeline, the householder's diary, and the home's readings and
risk history as the evidence report's SVG charts (rules.damp.report). The PDF is this page
printed (ops_api.pdf); the CSV has one row per timeline entry and one per clock.

Two audiences, one code: the caller decides what goes into the `CasePack` (the householder's
copy is built from the entries the tenant may see, from their tenancy on, and no officers'
record); the page then shows the officers' record only when the pack carries one.
No I/O, no clock reading: `generated_at` is the caller's.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cityops.csv_safe import safe_row
from rules.cases.clocks import ALTERNATIVE_ACCOMMODATION, LONDON, Clock, alternative_accommodation_needed, due_in_words
from rules.damp.report import EvidenceInput, charts_html

Audience = Literal["householder", "landlord"]
VERDICTS = {"met": "met", "met_late": "met late", "overdue": "overdue", "waiting": "not started yet",
            "on_time": "running, on time", "due_soon": "running, due soon"}
HOUSEHOLDER_COLUMNS = ("row", "at", "kind", "summary", "text", "clock", "due", "met_at", "verdict", "late_by",
                       "source")
LANDLORD_COLUMNS = ("row", "at", "kind", "summary", "text", "by", "visible_to_tenant", "clock", "due", "met_at",
                    "verdict", "late_by", "source")


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    summary: str
    text: str = ""                  # the words behind the line (the caller chooses which)
    by: str | None = None           # who recorded it (the landlord's copy only)
    visible_to_tenant: bool = True  # False: an internal entry (never in the householder's copy)


@dataclass(frozen=True)
class DiaryLine:
    at: datetime
    activity: str
    minutes: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class OfficersRecord:
    """What only the landlord's copy shows: the reasoning, the flags, the decisions."""

    category_reason: str | None = None
    vulnerabilities: tuple[str, ...] = ()
    vulnerability_note: str | None = None
    alternative_accommodation: str | None = None
    closed_reason: str | None = None


@dataclass(frozen=True)
class CasePack:
    audience: Audience
    case_id: int
    home_label: str
    landlord: str | None
    state: str
    category: str | None
    aware_at: datetime | None
    closed_at: datetime | None
    period: tuple[datetime, datetime]            # the readings and the diary shown
    generated_at: datetime
    clocks: tuple[Clock, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    diary: tuple[DiaryLine, ...] = ()
    readings: EvidenceInput | None = None        # None: no sensor readings for the period
    officers: OfficersRecord | None = None       # the landlord's copy only
    notes: tuple[str, ...] = ()                  # why something is missing, in plain words


def verdict(clock: Clock) -> str:
    """The clock's state in plain words: met, met late, overdue, not started yet, running."""
    return VERDICTS[clock.state]


def verdict_with_delay(clock: Clock) -> str:
    """'met late by 1 day 10 hours', else the verdict alone."""
    late = late_by(clock)
    return f"{verdict(clock)} by {late}" if late else verdict(clock)


def late_by(clock: Clock) -> str:
    """How late a clock was met: '2 days 3 hours' ('' when met on time or not met)."""
    if clock.due is None or clock.met_at is None or clock.met_at <= clock.due:
        return ""
    return _span(clock.met_at - clock.due)


def _span(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    if hours or not days:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}" if hours else "under an hour")
    return " ".join(parts)


def local(moment: datetime | None) -> str:
    """London time with its zone: 'Mon 11 Jan 2027 14:30 GMT'."""
    if moment is None:
        return "-"
    at = moment.astimezone(LONDON)
    return f"{at:%a %d %b %Y %H:%M} {at.tzname()}"


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


# --- the CSV --------------------------------------------------------------------------------

def csv_rows(pack: CasePack) -> list[dict[str, object]]:
    """One row per timeline entry (oldest first), then one per clock; text cells formula-safe."""
    columns = columns_for(pack.audience)
    rows: list[dict[str, object]] = []
    for entry in pack.timeline:
        row: dict[str, object] = {"row": "timeline", "at": _iso(entry.at), "kind": entry.kind,
                                  "summary": entry.summary, "text": entry.text}
        if pack.audience == "landlord":
            row |= {"by": entry.by, "visible_to_tenant": "yes" if entry.visible_to_tenant else "no"}
        rows.append(safe_row(row, columns))
    for clock in pack.clocks:
        rows.append(safe_row({"row": "clock", "kind": clock.key, "summary": clock.label, "clock": clock.key,
                              "due": _iso(clock.due), "met_at": _iso(clock.met_at), "verdict": verdict(clock),
                              "late_by": late_by(clock), "source": clock.source}, columns))
    return rows


def columns_for(audience: Audience) -> tuple[str, ...]:
    return LANDLORD_COLUMNS if audience == "landlord" else HOUSEHOLDER_COLUMNS


def pack_csv(pack: CasePack) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns_for(pack.audience), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(csv_rows(pack))
    return out.getvalue()


# --- the page -------------------------------------------------------------------------------

_STYLE = ("<style>@page{size:A4;margin:14mm}body{font-family:sans-serif;max-width:760px;margin:1em auto;"
          "padding:0 .5em;color:#222;overflow-wrap:break-word;font-size:11pt}"
          "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;"
          "vertical-align:top}.met{color:#2e7d32}.met_late,.overdue{color:#c62828;font-weight:bold}"
          ".internal{background:#fff3e0}.small{font-size:9pt}"
          ".key{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px}"
          "@media print{body{margin:0}h2{page-break-after:avoid}svg,tr{page-break-inside:avoid}}</style>")
# the page loads nothing and runs nothing (it is printed by a browser)
_CSP = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = ()) -> str:
    """A table of escaped text; `row_classes` gives each row a class ('' for none)."""
    esc = html.escape
    body = []
    for i, row in enumerate(rows):
        css = row_classes[i] if i < len(row_classes) else ""
        body.append((f'<tr class="{css}">' if css else "<tr>") + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    return "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + "".join(body) + "</table>"


def _clocks_html(pack: CasePack) -> str:
    if not pack.clocks:
        return "<p>No clock runs on this case (it was never opened as a hazard).</p>"
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(c.label)}</td><td>{esc(c.starts_from.replace('_', ' '))}</td>"
        f"<td>{esc(f'{due_in_words(c.due)} ({local(c.due)})' if c.due else '-')}</td><td>{esc(local(c.met_at))}</td>"
        f"<td class=\"{c.state}\">{esc(verdict_with_delay(c))}</td></tr>"
        for c in pack.clocks)
    head = "".join(f"<th>{h}</th>" for h in ("Duty", "Runs from", "Due", "Done", "Verdict"))
    cells = f"<table><tr>{head}</tr>{rows}</table>"
    sources = "".join(f"<li><strong>{html.escape(c.label)}</strong>: {html.escape(c.source)}</li>"
                      for c in pack.clocks)
    extra = ""
    if alternative_accommodation_needed(pack.clocks):
        extra = (f"<p class=\"overdue\">The home was not made safe in time: suitable alternative accommodation is "
                 f"due ({html.escape(ALTERNATIVE_ACCOMMODATION)}).</p>")
    return cells + extra + f'<p class="small">Sources:</p><ul class="small">{sources}</ul>'


def _timeline_html(pack: CasePack) -> str:
    if not pack.timeline:
        return "<p>Nothing recorded yet.</p>"
    landlord = pack.audience == "landlord"
    head = ("When", "What", "Details", "By", "Seen by the tenant") if landlord else ("When", "What", "Details")
    rows = []
    for e in pack.timeline:
        row = [local(e.at), e.summary, e.text]
        if landlord:
            row += [e.by or "-", "yes" if e.visible_to_tenant else "no (internal)"]
        rows.append(row)
    return _table(head, rows, ["" if e.visible_to_tenant else "internal" for e in pack.timeline])


def _readings_html(data: EvidenceInput | None) -> str:
    if data is None or not len(data.hours):
        return "<p>No sensor readings for this home in this period.</p>"
    esc = html.escape
    parts = [charts_html(data, heading="h3")]
    if data.latest is not None and data.latest.reasons:
        parts.append("<h3>Why, in plain words (the latest assessment)</h3><ul>"
                     + "".join(f"<li>{esc(r)}</li>" for r in data.latest.reasons) + "</ul>")
    return "".join(parts)


def _diary_html(pack: CasePack) -> str:
    if not pack.diary:
        return "<p>No diary entries in this period.</p>"
    return _table(("When", "Activity", "Minutes", "Note"),
                  [(local(d.at), d.activity.replace("_", " "), str(d.minutes or "-"), d.note or "")
                   for d in pack.diary])


def _officers_html(record: OfficersRecord) -> str:
    rows = [("Why this category", record.category_reason or "-"),
            ("Vulnerabilities recorded", ", ".join(v.replace("_", " ") for v in record.vulnerabilities) or "none"),
            ("Vulnerability note", record.vulnerability_note or "-"),
            ("Alternative accommodation", record.alternative_accommodation or "-"),
            ("Why it was closed", record.closed_reason or "-")]
    return ("<h2>Officers' record (internal: not in the householder's copy)</h2><table>"
            + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows) + "</table>")


def pack_html(pack: CasePack) -> str:
    """The whole evidence pack as one HTML page (no scripts, nothing loaded: print-ready)."""
    esc = html.escape
    start, end = pack.period
    copy = ("The householder's copy: the case as you may see it, from the start of your tenancy."
            if pack.audience == "householder" else
            "The landlord's full record: every timeline entry, internal notes included.")
    facts = [("Home", pack.home_label), ("Landlord", pack.landlord or "not recorded"),
             ("Case", f"{pack.case_id}, {pack.state}"), ("Category", pack.category or "not triaged"),
             ("Landlord aware", local(pack.aware_at)), ("Closed", local(pack.closed_at)),
             ("Readings and diary from", f"{local(start)} to {local(end)}")]
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">" + _CSP,
        f"<title>Damp and mould case {pack.case_id}: evidence pack</title>{_STYLE}</head><body>",
        f"<h1>Damp and mould case {pack.case_id}: evidence pack</h1><p><strong>{esc(pack.home_label)}</strong><br>"
        f"{esc(copy)}<br>Generated {esc(local(pack.generated_at))} by CityOps. Times are London times.</p>",
        "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts) + "</table>",
    ]
    if pack.officers is not None:
        parts.append(_officers_html(pack.officers))
    parts += [
        "<h2>Awaab's Law clocks</h2>" + _clocks_html(pack),
        "<h2>Case timeline</h2>" + _timeline_html(pack),
        "<h2>Readings and damp risk</h2>" + _readings_html(pack.readings),
        "<h2>Diary</h2>" + _diary_html(pack),
    ]
    if pack.notes:
        parts.append("<h2>About this pack</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in pack.notes) + "</ul>")
    parts.append("<p><small>Surface conditions use the temperature factor method of BS EN ISO 13788; the mould "
                 "index is the VTT (Hukka-Viitanen) model. The clocks are those of SI 2025/1042 as CityOps counts "
                 "them (working days in England, bank holidays skipped).</small></p></body></html>")
    return "\n".join(parts)
