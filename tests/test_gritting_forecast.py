"""Bought road-weather forecasts: good CSV and JSON files, bad ones refused whole with each row named."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from rules.errors import InvalidForecast
from rules.gritting.forecast import on_grid, parse_forecast

DATA = Path(__file__).parent / "data" / "roads"


def test_a_csv_forecast_per_segment() -> None:
    rows = parse_forecast((DATA / "forecast.csv").read_text(), "forecast.csv")
    assert len(rows) == 5 and {r.target_kind for r in rows} == {"segment"}
    first, _, snow = rows[:3]
    assert first.valid_at == datetime(2026, 1, 6, 20, tzinfo=UTC)
    assert (first.rst_c, first.air_temp_c, first.dew_point_c, first.precip) == (1.5, 2.5, -0.5, "none")
    assert snow.precip == "light_snow"                               # "snow" means light snow
    assert rows[3].dew_point_c is None


def test_a_json_forecast_as_series_and_rows() -> None:
    rows = parse_forecast((DATA / "forecast.json").read_text(), "forecast.json")
    sensor = [r for r in rows if r.target_kind == "sensor"]
    assert [r.rst_c for r in sensor] == [2.0, 0.0, -1.5] and sensor[-1].precip == "freezing_rain"
    assert sensor[1].rh_pct == 88 and sensor[1].air_temp_c == 1.0
    assert [(r.target_id, r.rst_c) for r in rows if r.target_kind == "segment"] == [("s7", -1.0)]


def test_a_bad_file_names_every_bad_row_and_imports_nothing() -> None:
    with pytest.raises(InvalidForecast) as err:
        parse_forecast((DATA / "forecast_bad.csv").read_text(), "forecast_bad.csv")
    text = str(err.value)
    assert "6 problem(s), nothing imported" in text
    assert "line 2: valid_at '2026-01-06T20:00' has no UTC offset" in text
    assert "line 3: rst_c 'warm' is not a number" in text
    assert "line 4: rh_pct 0.85 looks like a fraction" in text
    assert "line 5: precip 'hail' is not one of" in text
    assert "line 6: give exactly one of sensor_id, segment_id and area_id" in text
    assert "line 8: segment s1 at 2026-01-07T00:00:00+00:00 is also in line 7" in text
    assert err.value.row == "line 2" and err.value.hint


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty CSV"),
    ("device,time,temp\nx,2026-01-06T20:00Z,1\n", "the CSV header needs"),
    ("[{\"segment_id\": \"s1\"", "not valid JSON"),
    ("{\"data\": 1}", "expected a list"),
    ("[{\"segment_id\": \"s1\", \"valid_at\": \"2026-01-06T20:00Z\", \"rst_c\": 1, \"dew_point_c\": 5, "
     "\"air_temp_c\": 2}]", "dew_point_c 5 is above air_temp_c 2"),
    ("[{\"segment_id\": \"s1\", \"valid_at\": \"2026-01-06T20:00Z\", \"rst_c\": -90}]", "outside -50..80"),
    ("[{\"segment_id\": \"s1\", \"valid_at\": \"2026-01-06T20:00Z\", \"rst_c\": 1, \"rh_pct\": 80}]",
     "rh_pct needs air_temp_c"),
    ("[{\"segment_id\": \"s1\", \"times\": [\"2026-01-06T20:00Z\"], \"rst_c\": [1, 2]}]", "has 2 values for 1 times"),
    ("[]", "no forecast rows"),
])
def test_bad_forecasts(text: str, message: str) -> None:
    with pytest.raises(InvalidForecast, match=message):
        parse_forecast(text, "f")


def test_forecast_onto_the_time_grid() -> None:
    rows = parse_forecast((DATA / "forecast.csv").read_text(), "forecast.csv")
    s1 = [r for r in rows if r.target_id == "s1"]
    start = datetime(2026, 1, 6, 19, tzinfo=UTC).timestamp() / 3600
    grid = start + np.arange(0, 9)
    values = on_grid(s1, grid)
    assert np.isnan(values[0]) and values[1] == 1.5 and values[4] == -0.5 and values[7] == -2.5
    assert values[2] == pytest.approx(1.5 - 2 / 3) and np.isnan(values[8])       # linear between, NaN after
    gappy = on_grid(s1, grid, max_gap_h=2.0)                                      # 3-hour steps: not bridged
    assert np.isnan(gappy[2]) and gappy[1] == 1.5


def test_an_area_forecast_may_give_only_its_precipitation() -> None:
    rows = parse_forecast("area_id,valid_at,precip\nall,2026-01-07T02:00Z,snow\nR1,2026-01-07T03:00Z,freezing_rain\n",
                          "areas.csv")
    assert [(r.target_kind, r.target_id, r.rst_c, r.precip) for r in rows] == [
        ("area", "all", None, "light_snow"), ("area", "R1", None, "freezing_rain")]
    with pytest.raises(InvalidForecast, match="no rst_c"):        # a segment's row still needs its temperature
        parse_forecast("segment_id,area_id,valid_at,rst_c\ns1,,2026-01-07T02:00Z,\n", "x.csv")
