"""City overview: what is online, what is wrong, where."""

from __future__ import annotations

from dashboards.boards.common import KIND
from dashboards.model import (
    Board,
    MapView,
    MarkerLayer,
    Sql,
    Threshold,
    barchart,
    geomap,
    stat,
    table,
    timeseries,
)

SEVERITY_RANK = "CASE {col} WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END"

DEVICES_BY_KIND = Sql("""
SELECT kind,
       count(*) FILTER (WHERE online) AS online,
       count(*) FILTER (WHERE last_seen > $__timeTo()::timestamptz - interval '1 hour') AS reporting,
       count(*) AS active
FROM reporting.devices
WHERE status = 'active' AND kind IN (${kind:sqlstring})
GROUP BY kind
ORDER BY kind
""")

OPEN_ALERTS = Sql("""
SELECT s.severity, count(a.alert_id) AS open
FROM unnest(ARRAY['critical', 'warning', 'info']) AS s(severity)
LEFT JOIN reporting.alerts a ON a.severity = s.severity AND a.state <> 'resolved'
GROUP BY s.severity
ORDER BY max(""" + SEVERITY_RANK.format(col="s.severity") + """) DESC
""")

OPEN_ALERT_LIST = Sql("""
SELECT opened_at AS "opened", severity, state, title,
       coalesce(device_id, household_id, route_id, area) AS about,
       escalation_level AS escalation, acknowledged_by
FROM reporting.alerts
WHERE state <> 'resolved'
ORDER BY """ + SEVERITY_RANK.format(col="severity") + """ DESC, opened_at DESC
LIMIT 200
""")

DEVICE_MAP = Sql("""
SELECT d.device_id, d.kind,
       coalesce(g.lat, d.lat) AS lat, coalesce(g.lon, d.lon) AS lon,
       CASE WHEN d.online THEN 1 WHEN d.online IS NULL THEN 0.5 ELSE 0 END AS online,
       d.last_seen, d.battery_v
FROM reporting.devices d
LEFT JOIN LATERAL (
    SELECT r.lat, r.lon FROM reporting.road_readings r
    WHERE d.mobile AND r.device_id = d.device_id AND r.lat IS NOT NULL AND $__timeFilter(r.ts)
    ORDER BY r.ts DESC LIMIT 1) g ON true
WHERE d.status = 'active' AND d.kind IN (${kind:sqlstring})
  AND coalesce(g.lat, d.lat) IS NOT NULL
""")

READINGS_PER_HOUR = Sql("""
SELECT $__timeGroupAlias(bucket, $__interval), kind AS metric, sum(readings) AS value
FROM reporting.readings_per_hour
WHERE $__timeFilter(bucket) AND kind IN (${kind:sqlstring})
GROUP BY 1, 2
ORDER BY 1
""", format="time_series")

SILENT_DEVICES = Sql("""
SELECT device_id, kind, last_seen, online, battery_v, firmware_version
FROM reporting.devices
WHERE status = 'active' AND kind IN (${kind:sqlstring})
  AND (last_seen IS NULL OR last_seen < $__timeTo()::timestamptz - interval '1 hour')
ORDER BY last_seen NULLS FIRST
LIMIT 200
""")


def board(view: MapView) -> Board:
    return Board(
        uid="cityops-overview",
        title="CityOps: city overview",
        description="Devices online by kind, open alerts and the city map.",
        variables=(KIND,),
        panels=(
            barchart("Devices by kind: online, reporting in the last hour, active", DEVICES_BY_KIND,
                     x_field="kind", width=8,
                     description="online: the device's last status message said online; reporting: a "
                                 "message within the hour before the end of the time range."),
            stat("Open alerts", OPEN_ALERTS, width=4, height=8, fields="/^open$/",
                 thresholds=(Threshold(None, "green"), Threshold(1, "red"))),
            table("Open and acknowledged alerts", OPEN_ALERT_LIST, width=12),
            geomap("Devices", view, (MarkerLayer("Devices", color_field="online"), DEVICE_MAP),
                   thresholds=(Threshold(None, "red"), Threshold(0.5, "orange"), Threshold(1, "green")),
                   description="Green online, orange unknown, red offline; a gritter at its last position.",
                   width=14, height=14),
            timeseries("Readings per hour by kind", READINGS_PER_HOUR, min_interval="1h", width=10, height=7,
                       description="From the hourly aggregates (frog_hourly, road_hourly, bin_hourly)."),
            table("Devices not heard from in the last hour", SILENT_DEVICES, width=10, height=7),
        ),
    )
