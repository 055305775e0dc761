"""Damp and mould: risk by area, its distribution, and the homes officers should visit first."""

from __future__ import annotations

from dashboards.boards.common import AREA, IN_AREA, LEVEL_RANK
from dashboards.model import Board, MapView, MarkerLayer, Sql, Threshold, barchart, geomap, table, timeseries

# each frog box's newest assessment up to the end of the time range, from the reporting view:
# a home is its household id, area and assessment; no address, readings or diary, and a
# position rounded to about a kilometre (docs/operations.md, "What Grafana can see")
LATEST = """
WITH l AS (
    SELECT DISTINCT ON (a.device_id) a.*
    FROM reporting.damp_assessments a
    WHERE a.data_until <= $__timeTo()::timestamptz
    ORDER BY a.device_id, a.data_until DESC)
"""

RISK_BY_AREA = Sql(LATEST + f"""
SELECT l.area, round(avg(l.approx_lat)::numeric, 2) AS lat, round(avg(l.approx_lon)::numeric, 2) AS lon,
       count(*) AS homes,
       count(*) FILTER (WHERE l.level IN ('high', 'severe')) AS high_or_severe,
       round(avg({LEVEL_RANK.format(col='l.level')})::numeric, 2) AS mean_risk,
       round(max(l.mould_index)::numeric, 2) AS worst_mould_index
FROM l
WHERE l.approx_lat IS NOT NULL AND l.level <> 'unknown' AND {IN_AREA}
GROUP BY 1
""")

DISTRIBUTION = Sql(LATEST + f"""
SELECT l.level, count(*) AS homes
FROM l
WHERE {IN_AREA}
GROUP BY l.level
ORDER BY max({LEVEL_RANK.format(col='l.level')}) DESC
""")

WORST_HOMES = Sql(LATEST + f"""
SELECT l.household_id AS household, l.area, l.level,
       round(l.mould_index::numeric, 2) AS mould_index, l.damp_hours_7d, l.condensation_hours_7d,
       round(l.surface_rh_30d::numeric, 1) AS surface_rh_30d, l.social_landlord,
       array_to_string(ARRAY(SELECT jsonb_array_elements_text(l.reasons)), '; ') AS reasons,
       l.data_until AS "assessed to"
FROM l
WHERE l.level IN ('medium', 'high', 'severe') AND {IN_AREA}
ORDER BY {LEVEL_RANK.format(col='l.level')} DESC, l.mould_index DESC, l.damp_hours_7d DESC
LIMIT 50
""")

RH_BY_AREA = Sql(f"""
SELECT $__timeGroupAlias(l.bucket, $__interval), l.area AS metric, avg(l.rh_avg) AS value
FROM reporting.damp_area_hourly l
WHERE $__timeFilter(l.bucket) AND {IN_AREA}
GROUP BY 1, 2
ORDER BY 1
""", format="time_series")

TEMP_BY_AREA = Sql(f"""
SELECT $__timeGroupAlias(l.bucket, $__interval), l.area AS metric, min(l.air_temp_min) AS value
FROM reporting.damp_area_hourly l
WHERE $__timeFilter(l.bucket) AND {IN_AREA}
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
