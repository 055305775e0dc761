"""Writes the scenario library (tests/data/gritting_scenarios/*.json): named winter nights, each with the
decision it must give and where that expectation comes from. Run it again after changing a scenario:

    .venv/bin/python tests/data/gritting_scenarios/make_scenarios.py

Readings are exact functions of time (no noise), so a file says what a sensor would report.
The physical references used in the expectations:
- the constant-flux half-space (Carslaw & Jaeger, Conduction of Heat in Solids, 2nd ed., section 2.9):
  a surface losing a steady net flux cools as sqrt(t), so a road that has cooled at a steady rate r
  for t_c hours goes on to lose r * 2 t_c (sqrt((t_c + T) / t_c) - 1) over the next T hours;
- Magnus (Alduchov & Eskridge 1996) dew and frost points;
- the spread-rate matrices (NWSRG Practical Guide 2016; Transport Scotland 2010, Appendix D).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
NOW = datetime(2027, 1, 14, 18, 0, tzinfo=UTC)
LON0, LAT0, STEP = -2.6000, 51.4500, 0.0040       # ~280 m per segment, west to east


def network() -> dict[str, Any]:
    names = [("n1", "Hill Road", 1, 0.0, False), ("n2", "Hill Road", 1, 0.0, False),
             ("n3", "River Bridge", 1, -1.5, True), ("n4", "Mill Lane", 2, -0.3, False)]
    features: list[dict[str, Any]] = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [LON0, LAT0]},
                                       "properties": {"depot_id": "D1", "name": "Ashbury depot"}}]
    for k, (sid, name, priority, offset, bridge) in enumerate(names):
        coords = [[round(LON0 + k * STEP, 5), LAT0], [round(LON0 + (k + 1) * STEP, 5), LAT0]]
        features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords},
                         "properties": {"segment_id": sid, "name": name, "priority": priority, "route": "NE",
                                        "thermal_offset_c": offset, "bridge": bridge, "width_m": 7.3}})
    return {"type": "FeatureCollection", "features": features,
            "routes": [{"route_id": "NE", "name": "North-east route", "depot_id": "D1", "salt_capacity_kg": 6000}]}


def mid(k: int) -> tuple[float, float]:
    return round(LON0 + (k + 0.5) * STEP, 5), LAT0


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def readings(rst_now: float, rate: float, *, air_now: float | None = None, air_rate: float = 0.0,
             rh: float | None = None, state: str | None = None, hours: float = 6.0, end: datetime = NOW,
             every_min: int = 10, jitter: float = 0.0625) -> list[dict[str, Any]]:
    """A sensor's readings; `jitter`: every other reading one step of a DS18B20 (0.0625 degC) lower, as a
    real sensor flickers between two steps (0: the same value every time)."""
    out = []
    for j in range(int(hours * 60 / every_min), -1, -1):
        at = end - timedelta(minutes=every_min * j)
        h = (at - end).total_seconds() / 3600
        flicker = jitter if j % 2 else 0.0
        row: dict[str, Any] = {"ts": iso(at), "surface_temp_c": round(rst_now + rate * h - flicker, 4)}
        if air_now is not None:
            row["air_temp_c"] = round(air_now + air_rate * h, 3)
        if rh is not None:
            row["rh_pct"] = rh
        if state is not None:
            row["surface_state"] = state
        out.append(row)
    return out


def sensor(readings_: list[dict[str, Any]], segment: int = 1, sensor_id: str = "road-1") -> dict[str, Any]:
    lon, lat = mid(segment)
    return {"sensor_id": sensor_id, "lon": lon, "lat": lat, "segment_id": f"n{segment + 1}", "readings": readings_}


def sqrt_law_drop(rate: float, cooled_h: float, ahead_h: float = 12.0) -> float:
    return rate * 2 * cooled_h * (math.sqrt((cooled_h + ahead_h) / cooled_h) - 1)


def scenario(name: str, description: str, source: str, expect: dict[str, Any], sensors: list[dict[str, Any]],
             forecasts: list[dict[str, Any]] | None = None, settings: dict[str, Any] | None = None) -> None:
    data = {"description": description, "source": source, "expect": expect, "now": iso(NOW), "network": network(),
            "sensors": sensors, "forecasts": forecasts or [], "settings": settings or {}}
    (HERE / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")


def main() -> None:
    for rh, rst, rate, air in ((60, 4.0, 0.8, 6.0), (90, 4.0, 0.8, 6.0), (98, 3.5, 0.6, 4.5)):
        drop = sqrt_law_drop(rate, 6.0)
        scenario(f"rain_then_clearing_rh{rh}",
                 f"Rain until the afternoon, then clearing: a wet road at {rst} degC cooling {rate} degC/h for six "
                 f"hours, air {air} degC, RH {rh} %.",
                 f"Carslaw & Jaeger half-space under a steady loss: a further {drop:.1f} degC over 12 h, to "
                 f"{rst - drop:+.1f} degC, below the +1.0 degC trigger on a wet road; condensation cannot hold it "
                 "at the dew point (issue 17: the old floor said 'none' at RH 90 and 98 %).",
                 {"routes": {"NE": "send"}, "segments": {"n2": {"action": "treat"}, "n3": {"action": "treat"}}},
                 [sensor(readings(rst, -rate, air_now=air, air_rate=-0.5, rh=rh, state="wet"))])
    scenario("hoar_frost_clear_calm_dry",
             "A clear calm night on a dry road: air -5 degC at RH 85 % (frost point -6.32 degC), the road at "
             "-5.0 degC cooling 0.5 degC/h.",
             "Magnus frost point over ice (Alduchov & Eskridge 1996): -6.32 degC at -5 degC / 85 %; the road "
             "passes it within three hours even at the observed rate: hoar frost on a dry road.",
             {"routes": {"NE": "send"}, "segments": {"n2": {"action": "treat", "reason": "hoar frost"}}},
             [sensor(readings(-5.0, -0.5, air_now=-5.0, rh=85, state="dry"))])
    for precip, total in (("light_snow", 20.0), ("heavy_snow", 40.0)):
        scenario(f"{precip}_forecast_no_state",
                 f"{precip.replace('_', ' ').capitalize()} forecast from 02:00 for the area; the road sensor is a "
                 "DS18B20 that reports only its surface temperature (no state), +1.5 degC and steady.",
                 f"Spread-rate matrices: {'light snow 20' if total == 20 else 'medium/heavy snow 2 x 20'} g/m2 dry "
                 "salt; issue 17: a forecast must apply whatever the sensor can measure.",
                 {"routes": {"NE": "send"},
                  "segments": {"n1": {"action": "treat", "rate_g_m2": total}, "n4": {"action": "treat"}}},
                 [sensor(readings(1.5, 0.0))],
                 [{"area_id": "all", "valid_at": iso(NOW + timedelta(hours=8)), "precip": precip}])
    scenario("freezing_rain",
             "Freezing rain forecast at 23:00 on Hill Road (n2), which reads +0.5 degC and steady.",
             "Spread-rate matrices: freezing rain forecast takes the medium/heavy snow row, 2 x 20 g/m2.",
             {"routes": {"NE": "send"}, "segments": {"n2": {"action": "treat", "rate_g_m2": 40.0}}},
             [sensor(readings(0.5, 0.0, state="damp"))],
             [{"segment_id": "n2", "valid_at": iso(NOW + timedelta(hours=5)), "rst_c": 0.0,
               "precip": "freezing_rain"}])
    for rst, total in ((-1.0, 20.0), (-6.0, 40.0)):
        scenario(f"ice_present_{'minus1' if rst == -1.0 else 'minus6'}",
                 f"Ice already on the road at {rst} degC (the sensor reports state ice), steady.",
                 f"NWSRG Practical Guide: ice formed {'above' if rst > -5 else 'at or below'} -5 degC: "
                 f"{'20' if total == 20 else '2 x 20'} g/m2 (issue 17: it got frost rates, 8 and 2 x 15).",
                 {"routes": {"NE": "send"}, "segments": {"n2": {"action": "treat", "rate_g_m2": total}}},
                 [sensor(readings(rst, 0.0, state="ice"))])
    scenario("bridge_colder_than_its_sensor",
             "A wet road steady at +2.0 degC at the sensor on Hill Road; the River Bridge runs 1.5 degC colder "
             "(thermal mapping).",
             "Thermal mapping offsets (DESIGN section 5): the bridge at +0.5 degC is at or below the +1.0 degC "
             "trigger on a wet road: treat; the sensor's own segment, +2.0, is within the 1 degC margin: monitor.",
             {"routes": {"NE": "send"}, "segments": {"n3": {"action": "treat"}, "n2": {"action": "monitor"}}},
             [sensor(readings(2.0, 0.0, state="wet"))])
    scenario("all_sensors_stale",
             "Every road sensor's last reading is five hours old (a network outage) on a January night.",
             "Issue 17 fail-safe: no usable temperature on priority-1 segments in the winter season is "
             "'unknown' (the duty officer decides, alerted), never 'not needed'.",
             {"routes": {"NE": "unknown"}, "segments": {"n2": {"action": "monitor"}}},
             [sensor(readings(3.0, -0.5, state="wet", end=NOW - timedelta(hours=5)))])
    scenario("steady_honest_sensor",
             "An overcast night: a wet road holding +0.4 degC for four hours, the same value every reading.",
             "Issue 17: a steady honest sensor must not be dropped as stuck; a wet road at or below the +1.0 degC "
             "trigger is treated.",
             {"routes": {"NE": "send"}, "segments": {"n2": {"action": "treat"}}},
             [sensor(readings(0.4, 0.0, state="wet", hours=4.0, jitter=0.0))])
    gritter = {"sensor_id": "gritter-1", "mobile": True, "readings": [
        {"ts": iso(NOW - timedelta(minutes=30 - 2 * j)), "surface_temp_c": -1.5, "surface_state": "wet",
         "lon": round(LON0 + 0.0005 + j * 0.0008, 5), "lat": LAT0} for j in range(14)]}
    scenario("gritter_readings_only",
             "No fixed sensor; the gritter drove the route in the last half hour reading -1.5 degC on a wet road.",
             "The trigger rule: a wet road at -1.5 degC, at or below +1.0 degC, is treated.",
             {"routes": {"NE": "send"}, "segments": {"n1": {"action": "treat"}, "n2": {"action": "treat"}}},
             [gritter])
    scenario("forecast_only",
             "No sensors; a bought forecast per segment: +3 degC at 18:00 falling to -2 degC by 06:00, rain at 20:00.",
             "The trigger rule: rain makes the road wet; a wet road reaching +1.0 degC or below is treated.",
             {"routes": {"NE": "send"}, "segments": {f"n{k}": {"action": "treat"} for k in range(1, 5)}},
             [], [{"segment_id": f"n{k}", "times": [iso(NOW + timedelta(hours=h)) for h in (0, 2, 6, 12)],
                   "rst_c": [3.0, 2.0, 0.0, -2.0], "precip": ["none", "rain", "none", "none"]} for k in range(1, 5)])
    drop = sqrt_law_drop(0.3, 6.0)
    scenario("warm_humid_evening",
             "A mild humid evening: a wet road at 9.0 degC cooling 0.3 degC/h, air 10 degC, RH 90 %.",
             f"Carslaw & Jaeger half-space: a further {drop:.1f} degC over 12 h, to {9.0 - drop:+.1f} degC, far "
             "above the trigger and its margin: no treatment.",
             {"routes": {"NE": "not_needed"}, "segments": {f"n{k}": {"action": "none"} for k in range(1, 5)}},
             [sensor(readings(9.0, -0.3, air_now=10.0, air_rate=-0.2, rh=90, state="wet"))])
    scenario("dry_cold_road_above_frost_point",
             "A cold dry night: a dry road at -2.0 degC, steady, air -1 degC at RH 45 % (frost point about -10 degC).",
             "DESIGN section 5: a dry road well above its frost point needs no treatment.",
             {"routes": {"NE": "not_needed"}, "segments": {"n2": {"action": "none"}}},
             [sensor(readings(-2.0, 0.0, air_now=-1.0, rh=45, state="dry"))])


if __name__ == "__main__":
    main()
