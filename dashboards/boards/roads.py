"""Roads and gritting: surface temperature by segment, the routes to send, the gritter's track."""

from __future__ import annotations

from dashboards.boards.common import LATEST_GRITTING_RUN
from dashboards.model import Board, MapView, MarkerLayer, Sql, Threshold, geomap, table, timeseries

FREEZING = (Threshold(None, "red"), Threshold(0, "orange"), Threshold(2, "yellow"), Threshold(5, "green"))

SEGMENT_MAP = Sql(f"""
SELECT s.segment_id, s.name, s.mid_lat AS lat, s.mid_lon AS lon, s.priority, s.route_id,
       coalesce(r.surface_temp_c, dec.rst_now_c) AS surface_temp_c, r.ts AS measured_at,
       dec.rst_min_c AS forecast_min_c, dec.action
FROM reporting.road_segments s
LEFT JOIN LATERAL (
    SELECT rr.surface_temp_c, rr.ts
    FROM reporting.devices dv JOIN reporting.road_readings rr ON rr.device_id = dv.device_id
    WHERE dv.road_segment_id = s.segment_id AND NOT dv.mobile AND rr.surface_temp_c IS NOT NULL
      AND $__timeFilter(rr.ts)
    ORDER BY rr.ts DESC LIMIT 1) r ON true
LEFT JOIN reporting.gritting_segment_decisions dec
       ON dec.segment_id = s.segment_id AND dec.run_id = {LATEST_GRITTING_RUN}
WHERE s.mid_lat IS NOT NULL AND s.mid_lon IS NOT NULL
""")

ROUTES_TO_SEND = Sql(f"""
SELECT d.route_id, g.name, d.send, d.reason, d.treat_segments, round(d.salt_kg::numeric) AS salt_kg,
       d.freeze_at, d.latest_start, run.computed_at AS decided_at
FROM reporting.gritting_route_decisions d
JOIN reporting.gritting_runs run ON run.run_id = d.run_id
LEFT JOIN reporting.gritting_routes g ON g.route_id = d.route_id
WHERE d.run_id = {LATEST_GRITTING_RUN}
ORDER BY d.send DESC, d.latest_start NULLS LAST, d.route_id
""")

SEGMENTS_TO_TREAT = Sql(f"""
SELECT dec.segment_id, s.name, s.route_id, dec.action, round(dec.rst_min_c::numeric, 1) AS rst_min_c,
       dec.rst_min_at, round(dec.frost_point_c::numeric, 1) AS frost_point_c, dec.surface_state,
       dec.spread_rate_g_m2, round(dec.salt_kg::numeric) AS salt_kg, dec.reason
FROM reporting.gritting_segment_decisions dec
LEFT JOIN reporting.road_segments s ON s.segment_id = dec.segment_id
WHERE dec.run_id = {LATEST_GRITTING_RUN}
ORDER BY CASE dec.action WHEN 'treat' THEN 0 WHEN 'monitor' THEN 1 ELSE 2 END, dec.rst_min_c
""")

GRITTER_TRACK = Sql("""
SELECT rr.ts AS "time", rr.device_id, rr.lat, rr.lon, rr.surface_temp_c, rr.air_temp_c, rr.surface_state
FROM reporting.road_readings rr
JOIN reporting.devices d ON d.device_id = rr.device_id
WHERE d.mobile AND rr.lat IS NOT NULL AND rr.lon IS NOT NULL AND $__timeFilter(rr.ts)
ORDER BY rr.ts
""")

RST_BY_SEGMENT = Sql("""
SELECT $__timeGroupAlias(h.bucket, $__interval), coalesce(d.road_segment_id, d.device_id) AS metric,
       min(h.surface_temp_min) AS value
FROM reporting.road_hourly h
JOIN reporting.devices d ON d.device_id = h.device_id
WHERE NOT d.mobile AND $__timeFilter(h.bucket)
GROUP BY 1, 2
ORDER BY 1
""", format="time_series")


def board(view: MapView) -> Board:
    return Board(
        uid="cityops-roads",
        title="CityOps: roads and gritting",
        description="Road surface temperatures, the latest gritting decision and the gritter's track.",
        time_from="now-12h",
        panels=(
            geomap("Road surface temperature by segment", view,
                   (MarkerLayer("Segments", color_field="surface_temp_c", size=8), SEGMENT_MAP),
                   thresholds=FREEZING, unit="celsius",
                   description="The newest fixed-sensor reading on each segment in the time range, else the "
                               "latest gritting run's estimate; forecast minimum and action alongside."),
            geomap("Gritter track", view, (MarkerLayer("Gritter", color_field="surface_temp_c", size=4),
                                           GRITTER_TRACK),
                   thresholds=FREEZING, unit="celsius",
                   description="Positions and surface temperature from the mobile (gritter-mounted) sensors."),
            table("Routes: send or not (latest gritting run)", ROUTES_TO_SEND, width=24, height=8),
            table("Segments by action (latest gritting run)", SEGMENTS_TO_TREAT, width=14, height=10),
            timeseries("Coldest road surface by segment (hourly)", RST_BY_SEGMENT, unit="celsius",
                       min_interval="1h", width=10, height=10),
        ),
    )
