"""Damp and mould: risk by area, its distribution, and the homes officers should visit first."""

from __future__ import annotations

from dashboards.boards.common import AREA, HOME_AREA, IN_AREA, LEVEL_RANK
from dashboards.model import Board, MapView, MarkerLayer, Sql, Threshold, barchart, geomap, table, timeseries

# each frog box's newest assessment up to the end of the time range
LATEST = """
WITH latest AS (
    SELECT DISTINCT ON (a.device_id) a.*
    FROM damp_assessments a
    WHERE a.data_until <= $__timeTo()::timestamptz
    ORDER BY a.device_id, a.data_until DESC)
"""
FROM_LATEST = """
FROM latest l
JOIN devices d ON d.device_id = l.device_id
LEFT JOIN damp_home_settings s ON s.household_id = coalesce(l.household_id, d.household_id)
"""

RISK_BY_AREA = Sql(LATEST + f"""
SELECT {HOME_AREA} AS area, avg(d.lat) AS lat, avg(d.lon) AS lon, count(*) AS homes,
       count(*) FILTER (WHERE l.level IN ('high', 'severe')) AS high_or_severe,
       round(avg({LEVEL_RANK.format(col='l.level')})::numeric, 2) AS mean_risk,
       round(max(l.mould_index)::numeric, 2) AS worst_mould_index
""" + FROM_LATEST + f"""
WHERE d.lat IS NOT NULL AND l.level <> 'unknown' AND {IN_AREA}
GROUP BY 1
""")

DISTRIBUTION = Sql(LATEST + """
SELECT l.level, count(*) AS homes
""" + FROM_LATEST + f"""
WHERE {IN_AREA}
GROUP BY l.level
ORDER BY max({LEVEL_RANK.format(col='l.level')}) DESC
""")

WORST_HOMES = Sql(LATEST + f"""
SELECT coalesce(l.household_id, d.household_id) AS household, {HOME_AREA} AS area, l.level,
       round(l.mould_index::numeric, 2) AS mould_index, l.damp_hours_7d, l.condensation_hours_7d,
       round(l.surface_rh_30d::numeric, 1) AS surface_rh_30d, s.social_landlord,
       array_to_string(ARRAY(SELECT jsonb_array_elements_text(l.reasons)), '; ') AS reasons,
       l.data_until AS "assessed to"
""" + FROM_LATEST + f"""
WHERE l.level IN ('medium', 'high', 'severe') AND {IN_AREA}
ORDER BY {LEVEL_RANK.format(col='l.level')} DESC, l.mould_index DESC, l.damp_hours_7d DESC
LIMIT 50
""")

RH_BY_AREA = Sql(f"""
SELECT $__timeGroupAlias(h.bucket, $__interval), {HOME_AREA} AS metric, avg(h.rh_avg) AS value
FROM frog_hourly h
JOIN devices d ON d.device_id = h.device_id
LEFT JOIN damp_home_settings s ON s.household_id = d.household_id
WHERE $__timeFilter(h.bucket) AND {IN_AREA}
GROUP BY 1, 2
ORDER BY 1
""", format="time_series")

TEMP_BY_AREA = Sql(f"""
SELECT $__timeGroupAlias(h.bucket, $__interval), {HOME_AREA} AS metric, min(h.air_temp_min) AS value
FROM frog_hourly h
JOIN devices d ON d.device_id = h.device_id
LEFT JOIN damp_home_settings s ON s.household_id = d.household_id
WHERE $__timeFilter(h.bucket) AND {IN_AREA}
GROUP BY 1, 2
ORDER BY 1
""", format="time_series")


def board(view: MapView) -> Board:
    return Board(
        uid="cityops-damp",
        title="CityOps: damp and mould",
        description="Damp and mould risk from the frog boxes, by area; the homes to visit first.",
        variables=(AREA,),
        time_from="now-7d",
        refresh="5m",
        panels=(
            geomap("Risk by area", view, (MarkerLayer("Areas", color_field="mean_risk", size=14,
                                                      text_field="area"), RISK_BY_AREA),
                   thresholds=(Threshold(None, "green"), Threshold(2.5, "yellow"), Threshold(3.5, "orange"),
                               Threshold(4.5, "red")),
                   description="One marker per area at the mean position of its homes, coloured by the mean "
                               "risk level (1 none .. 5 severe). No single home is shown on this map."),
            barchart("Homes by risk level", DISTRIBUTION, x_field="level", width=12, height=12),
            table("Homes to visit first", WORST_HOMES, width=24, height=10,
                  description="Medium risk and above, worst first: level, then mould index, then damp hours."),
            timeseries("Indoor relative humidity by area (hourly mean)", RH_BY_AREA, unit="percent",
                       min_interval="1h"),
            timeseries("Coldest indoor temperature by area (hourly)", TEMP_BY_AREA, unit="celsius",
                       min_interval="1h"),
        ),
    )
