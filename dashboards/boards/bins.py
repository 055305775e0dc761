"""Bins: how full, which will overflow, and today's collection plan."""

from __future__ import annotations

from dashboards.model import Board, MapView, MarkerLayer, Sql, Threshold, geomap, stat, table, timeseries

LATEST_PRIORITY = """
WITH p AS (
    SELECT DISTINCT ON (device_id) *
    FROM reporting.bin_priorities
    WHERE data_until <= $__timeTo()::timestamptz
    ORDER BY device_id, data_until DESC)
"""

FILL_MAP = Sql(LATEST_PRIORITY + """
, r AS (
    SELECT DISTINCT ON (device_id) device_id, fill_fraction, ts
    FROM reporting.bin_readings
    WHERE $__timeFilter(ts)
    ORDER BY device_id, ts DESC)
SELECT d.device_id, d.lat, d.lon,
       round((100 * coalesce(p.fill, r.fill_fraction))::numeric) AS fill_pct,
       round(nullif(p.hours_to_threshold, 'Infinity')::numeric, 1) AS hours_to_full,
       p.status, r.ts AS last_reading
FROM reporting.devices d
LEFT JOIN p ON p.device_id = d.device_id
LEFT JOIN r ON r.device_id = d.device_id
WHERE d.kind = 'bin' AND d.status = 'active' AND d.lat IS NOT NULL AND d.lon IS NOT NULL
""")

OVERFLOW_FORECAST = Sql(LATEST_PRIORITY + """
SELECT p.device_id, bs.bin_type, bs.place, round((100 * p.fill)::numeric) AS fill_pct,
       round(nullif(p.hours_to_threshold, 'Infinity')::numeric, 1) AS hours_to_full,
       round(nullif(p.hours_low, 'Infinity')::numeric, 1) AS earliest_h,
       round(nullif(p.hours_high, 'Infinity')::numeric, 1) AS latest_h,
       round((100 * p.overflow_risk)::numeric) AS overflow_risk_pct, p.mandatory,
       round(p.score::numeric, 2) AS score, p.reasons, p.data_until AS "as of"
FROM p
LEFT JOIN reporting.bin_settings bs ON bs.device_id = p.device_id
WHERE p.status <> 'unknown'
ORDER BY p.mandatory DESC, p.score DESC
LIMIT 100
""")

PLAN = """
WITH plan AS (
    SELECT DISTINCT ON (depot_id) *
    FROM reporting.bin_plans
    WHERE shift_start < date_trunc('day', $__timeTo()::timestamptz) + interval '2 days'
    ORDER BY depot_id, shift_start DESC, computed_at DESC)
"""

PLAN_STOPS = Sql(PLAN + """
SELECT p.depot_id, p.shift_start, s.truck, s.trip, s.seq, s.device_id, s.arrive, s.depart,
       s.load_after_l, p.feasible
FROM plan p
JOIN reporting.bin_plan_stops s ON s.plan_id = p.plan_id
ORDER BY p.depot_id, s.truck, s.trip, s.seq
""")

PLAN_SUMMARY = Sql(PLAN + """
SELECT p.depot_id,
       (SELECT count(*) FROM reporting.bin_plan_stops s WHERE s.plan_id = p.plan_id) AS stops,
       round(p.distance_m / 1000.0, 1) AS distance_km,
       jsonb_array_length(p.missed) AS missed_mandatory
FROM plan p
ORDER BY p.depot_id
""")

FILL_OVER_TIME = Sql("""
SELECT $__timeGroupAlias(bucket, $__interval), avg(fill_avg) * 100 AS "mean fill", max(fill_max) * 100 AS "fullest"
FROM reporting.bin_hourly
WHERE $__timeFilter(bucket)
GROUP BY 1
ORDER BY 1
""", format="time_series")

EVENTS = Sql("""
SELECT e.ts AS "time", e.device_id, e.kind, round(e.value::numeric, 1) AS value, e.message
FROM reporting.bin_events e
WHERE $__timeFilter(e.ts)
ORDER BY e.ts DESC
LIMIT 100
""")


def board(view: MapView) -> Board:
    return Board(
        uid="cityops-bins",
        title="CityOps: bins",
        description="Bin fill, the overflow forecast and the collection plan.",
        time_from="now-2d",
        refresh="5m",
        panels=(
            geomap("Bin fill", view, (MarkerLayer("Bins", color_field="fill_pct"), FILL_MAP), unit="percent",
                   thresholds=(Threshold(None, "green"), Threshold(60, "yellow"), Threshold(80, "orange"),
                               Threshold(95, "red"))),
            table("Overflow forecast (latest priorities)", OVERFLOW_FORECAST, height=12,
                  description="Mandatory bins first, then by score; hours until the fill threshold with its "
                              "likely range."),
            stat("Collection plan per depot", PLAN_SUMMARY, width=8, height=6, fields="/^(stops|distance_km|"
                 "missed_mandatory)$/"),
            table("Collection plan: stops in order (latest shift per depot)", PLAN_STOPS, width=16, height=10),
            timeseries("Fill across the city (hourly)", FILL_OVER_TIME, unit="percent", min_interval="1h",
                       width=8, height=8),
            table("Fire and tilt events", EVENTS, width=16, height=8),
        ),
    )
