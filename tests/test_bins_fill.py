"""Fill from ultrasonic distance: calibration, blind zone, spurious pings, temperature."""

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.bins.fill import (
    BinCalibration,
    compensate_temperature,
    fill_fraction,
    fill_from_pings,
    rolling_fill,
)
from rules.errors import InvalidBinSetup
from simulation.bins import BinSpec
from simulation.synthetic.bins import simulate_bin

# JSN-SR04T (blind zone 250 mm) 1300 mm above the bottom of a 1000 mm bin: full is 300 mm away
JSN = BinCalibration.for_sensor(1300, 1000, "jsn-sr04t", "bin-1")


def test_the_formula_empty_half_full_and_clipped() -> None:
    assert fill_fraction([1300, 800, 300, 1350, 200], 1300, 1000).tolist() == [0.0, 0.5, 1.0, 0.0, 1.0]


def test_pings_inside_the_blind_zone_are_not_full_but_unknown() -> None:
    reading = fill_from_pings([40, 90, 120, 60], JSN)
    assert not reading.known
    assert reading.rejected == {"blind zone": 4}
    assert "blind zone" in reading.explain() and "unknown" in reading.explain()


def test_blind_zone_echoes_among_good_pings_are_dropped() -> None:
    reading = fill_from_pings([800, 810, 60, 795, 80], JSN)
    assert reading.fill == pytest.approx(0.5, abs=0.01)
    assert reading.used == 3 and reading.rejected == {"blind zone": 2}


def test_a_small_blind_zone_sensor_reads_a_nearly_full_bin() -> None:
    hc = BinCalibration.for_sensor(1100, 1000, "hc-sr04")       # full is 100 mm away, blind zone 20 mm
    assert fill_from_pings([110, 105, 112], hc).fill == pytest.approx(0.99, abs=0.01)


def test_lid_open_and_a_bag_in_the_beam_are_rejected() -> None:
    reading = fill_from_pings([1600, 1700, 900, 910, 905, 420, np.nan], JSN)
    assert reading.fill == pytest.approx(0.395, abs=0.01)
    assert reading.rejected == {"beyond the bin bottom (lid open?)": 2, "outlier (something in the beam?)": 1,
                                "missing": 1}


def test_speed_of_sound_compensation() -> None:
    # a sensor assuming 20 degC over-reads in the cold: 1000 mm at 0 degC is 964.7 mm
    assert compensate_temperature(1000.0, 0.0) == pytest.approx(1000 * 331.3 / (331.3 + 0.606 * 20), abs=0.01)
    assert compensate_temperature(1000.0, 20.0) == pytest.approx(1000.0)
    cold = fill_from_pings([800.0] * 3, JSN, air_temp_c=-10.0)
    assert cold.fill > fill_from_pings([800.0] * 3, JSN).fill


def test_a_full_line_inside_the_blind_zone_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidBinSetup) as caught:
        BinCalibration.for_sensor(1100, 1000, "jsn-sr04t", "bin-7")
    assert "blind zone" in str(caught.value) and caught.value.device_id == "bin-7"
    with pytest.raises(InvalidBinSetup, match="depth"):
        BinCalibration(1000, 0)


def test_rolling_fill_tracks_a_simulated_bin() -> None:
    spec = BinSpec(fire_chance_per_day=0, tilt_chance_per_day=0)
    history = simulate_bin(spec, datetime(2026, 1, 5, tzinfo=UTC), days=14, seed=5)
    fill = rolling_fill(history.distance_mm, history.temp_c, JSN)
    error = np.abs(fill - history.true_fill)
    assert np.nanmean(error) < 0.03                   # noisy pings, 8 % no echo, 4 % blind-zone echoes
    assert np.isfinite(fill).mean() > 0.97


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 3000), st.just(float("nan"))), min_size=1, max_size=12),
       st.floats(-20, 40))
def test_fill_is_a_fraction_or_unknown_and_never_full_from_blind_pings(pings: list[float], temp: float) -> None:
    reading = fill_from_pings(pings, JSN, air_temp_c=temp)
    assert not reading.known or 0.0 <= reading.fill <= 1.0
    blind_only = fill_from_pings([p % JSN.blind_zone_mm for p in pings if np.isfinite(p)] or [np.nan], JSN)
    assert not blind_only.known
