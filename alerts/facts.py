"""Load the facts the alert rules look at (the adapter for alerts/rules.py).

Everything is read as of `now` (windows end there, later rows are ignored), so a test or a
replay can inject the time. A source whose tables are missing (gritting before migration
0008) is left as None: its rules are not evaluated, and a note says why.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from alerts.case_clocks import CASE_TABLES
from alerts.ingest_stall import load_beats
from alerts.rules import (
    BinEventFact,
    BinPriorityFact,
    CaseFact,
    DampFact,
    DeviceFact,
    Facts,
    RouteFact,
    SegmentFact,
    Values,
)
from cityops.settings import AlertsSettings
from cityops.storage import Database
from devices.health_query import VALUE_COLUMNS

log = logging.getLogger("alerts.facts")

GRITTING_TABLES = ("gritting_runs", "gritting_segment_decisions", "gritting_route_decisions", "road_segments",
                   "gritting_routes")

_DAMP = """
SELECT DISTINCT ON (a.device_id) a.device_id, a.household_id, h.area, a.level, a.data_until
FROM damp_assessments a
JOIN devices d ON d.device_id = a.device_id AND d.status = 'active'
LEFT JOIN damp_home_settings h ON h.household_id = a.household_id
WHERE a.data_until <= $1
ORDER BY a.device_id, a.data_until DESC
"""

_SEGMENTS = """
SELECT s.run_id, s.segment_id, g.name, coalesce(s.route_id, g.route_id) AS route_id, r.name AS route_name,
       g.priority, s.action, s.rst_min_c, s.rst_min_at, s.hazard_at, s.surface_state, s.reason
FROM gritting_segment_decisions s
LEFT JOIN road_segments g ON g.segment_id = s.segment_id
LEFT JOIN gritting_routes r ON r.route_id = coalesce(s.route_id, g.route_id)
WHERE s.run_id = $1
ORDER BY s.segment_id
"""

# `decision` (send|not_needed|unknown) came with migration 0015: read through to_jsonb so the
# query works with or without the column
_ROUTES = """
SELECT r.run_id, r.route_id, g.name, r.send, r.reason, r.treat_segments, r.salt_kg, r.latest_start,
       to_jsonb(r)->>'decision' AS decision
FROM gritting_route_decisions r
LEFT JOIN gritting_routes g ON g.route_id = r.route_id
WHERE r.run_id = $1
ORDER BY r.route_id
"""

# with each bin its round (depot, collection weekdays; no depot set: the first depot) and its
# truck on its depot's latest plan for a shift not over yet
_BIN_PRIORITIES = """
WITH plans AS (
    SELECT DISTINCT ON (p.depot_id) p.plan_id, p.shift_start
    FROM bin_plans p JOIN bin_depots d ON d.depot_id = p.depot_id
    WHERE p.shift_start + d.shift_h * interval '1 hour' > $1
    ORDER BY p.depot_id, p.plan_id DESC
), planned AS (
    SELECT DISTINCT ON (s.device_id) s.device_id, s.truck, plans.shift_start
    FROM plans JOIN bin_plan_stops s ON s.plan_id = plans.plan_id
    ORDER BY s.device_id, plans.shift_start
)
SELECT DISTINCT ON (p.device_id) p.device_id, p.status, p.fill, p.overflow_risk, p.hours_to_threshold,
       coalesce(b.depot_id, (SELECT min(depot_id) FROM bin_depots)) AS depot_id,
       coalesce(b.collection_weekdays, '{}') AS weekdays, planned.truck, planned.shift_start
FROM bin_priorities p
JOIN devices d ON d.device_id = p.device_id AND d.status = 'active'
LEFT JOIN bin_settings b ON b.device_id = p.device_id
LEFT JOIN planned ON planned.device_id = p.device_id
WHERE p.data_until <= $1
ORDER BY p.device_id, p.data_until DESC
"""

_BIN_EVENTS = """
SELECT DISTINCT ON (e.device_id, e.kind) e.device_id, e.kind, e.ts, e.value, e.message
FROM bin_events e
JOIN devices d ON d.device_id = e.device_id AND d.status = 'active'
WHERE e.ts > $1 AND e.ts <= $2
ORDER BY e.device_id, e.kind, e.ts DESC
"""

_DEVICES = """
SELECT d.device_id, d.kind, d.household_id, h.area, d.last_seen, d.battery_v
FROM devices d LEFT JOIN damp_home_settings h ON h.household_id = d.household_id
WHERE d.status = 'active'
ORDER BY d.device_id
"""

# the latest K readings of each active device of a kind (an index scan on (device_id, ts) each)
_RECENT = """
SELECT d.device_id, r.*
FROM devices d
CROSS JOIN LATERAL (SELECT ts, {columns} FROM {table} x
                    WHERE x.device_id = d.device_id AND x.ts <= $2 ORDER BY ts DESC LIMIT $3) r
WHERE d.kind = $1 AND d.status = 'active'
"""


# the open cases the landlord was aware of by `now`, with their home and landlord; their
# milestones as of `now` (the earliest time of each; the awareness is the case's own)
_CASES = """
SELECT c.case_id, c.household_id, c.category, c.aware_at, h.landlord_id, l.name AS landlord_name,
       coalesce(h.label, '') AS home_label
FROM damp_cases c
JOIN homes h ON h.household_id = c.household_id
LEFT JOIN landlords l ON l.landlord_id = h.landlord_id
WHERE c.state = 'open' AND c.aware_at <= $1
ORDER BY c.case_id
"""

_MILESTONES = """
SELECT case_id, milestone, min(at) AS at FROM case_events
WHERE case_id = ANY($1::bigint[]) AND milestone IS NOT NULL AND milestone <> 'aware' AND at <= $2
GROUP BY case_id, milestone
"""


async def _missing(db: Database, tables: tuple[str, ...]) -> list[str]:
    rows = await db.fetch("SELECT t FROM unnest($1::text[]) t WHERE to_regclass(t) IS NULL", list(tables))
    return [r["t"] for r in rows]


async def load_facts(db: Database, now: datetime, settings: AlertsSettings) -> Facts:
    notes: list[str] = []
    damp = [DampFact(**dict(r)) for r in await db.fetch(_DAMP, now)]
    segments: list[SegmentFact] | None = None
    routes: list[RouteFact] | None = None
    missing = await _missing(db, GRITTING_TABLES)
    if missing:
        notes.append(f"gritting rules not evaluated: no table {', '.join(missing)} (migration 0008)")
    else:
        # the latest run as of `now` (as_of is the run's own "now", which a replay may set)
        latest = await db.fetchrow("SELECT run_id, window_end FROM gritting_runs WHERE as_of <= $1 "
                                   "ORDER BY run_id DESC LIMIT 1", now)
        if latest is None:
            notes.append("gritting rules not evaluated: no gritting run yet")
        elif latest["window_end"] <= now:  # last night's decisions say nothing about tonight
            notes.append(f"no current gritting run: the latest window ended {latest['window_end']:%Y-%m-%d %H:%M} UTC")
            segments, routes = [], []
        else:
            run_id = latest["run_id"]
            segments = [SegmentFact(**dict(r)) for r in await db.fetch(_SEGMENTS, run_id)]
            routes = [RouteFact(**dict(r)) for r in await db.fetch(_ROUTES, run_id)]
    priorities = [BinPriorityFact(**{**dict(r), "weekdays": tuple(r["weekdays"])})
                  for r in await db.fetch(_BIN_PRIORITIES, now)]
    events = [BinEventFact(**dict(r)) for r in await db.fetch(_BIN_EVENTS, now - settings.bin_event_window, now)]
    recent: dict[str, list[tuple[datetime, Values]]] = defaultdict(list)
    for kind, (table, columns) in VALUE_COLUMNS.items():
        query = _RECENT.format(columns=", ".join(columns), table=table)
        for r in await db.fetch(query, kind, now, settings.stuck_readings):
            recent[r["device_id"]].append((r["ts"], tuple(r[c] for c in columns)))
    devices = [DeviceFact(**dict(r), recent=recent.get(r["device_id"], ())) for r in await db.fetch(_DEVICES)]
    dead = await db.fetchval("SELECT count(*) FROM dead_letters WHERE received_at > $1 AND received_at <= $2",
                             now - settings.dead_letter_window, now)
    beats, active, note = await load_beats(db, now)
    if note:
        notes.append(note)
    cases = await load_cases(db, now, notes)
    return Facts(now, damp, segments, routes, priorities, events, devices, int(dead), tuple(notes), beats, active,
                 cases)


async def load_cases(db: Database, now: datetime, notes: list[str]) -> list[CaseFact] | None:
    """The open damp cases as of `now`; None (not evaluated, a note) before migration 0029."""
    missing = await _missing(db, CASE_TABLES)
    if missing:
        notes.append(f"case clock rules not evaluated: no table {', '.join(missing)} (migration 0029)")
        return None
    rows = await db.fetch(_CASES, now)
    reached: dict[int, dict[str, datetime]] = defaultdict(dict)
    for r in await db.fetch(_MILESTONES, [r["case_id"] for r in rows], now):
        reached[r["case_id"]][r["milestone"]] = r["at"]
    return [CaseFact(**dict(r), milestones=reached[r["case_id"]]) for r in rows]
