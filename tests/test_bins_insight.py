"""Bins that overflow often or never fill; dynamic collection against a fixed schedule."""

from datetime import UTC, datetime

import numpy as np
import pytest

from rules.bins.fill import BinCalibration, rolling_fill
from rules.bins.insight import bin_usage, simulate_policies
from simulation.bins import BinSpec
from simulation.synthetic.bins import simulate_bin

START = datetime(2026, 1, 5, tzinfo=UTC)


def usage_of(rate: float, seed: int) -> str:
    spec = BinSpec(base_fill_per_day=rate, fire_chance_per_day=0, tilt_chance_per_day=0)
    history = simulate_bin(spec, START, days=35, seed=seed)
    calibration = BinCalibration.for_sensor(spec.sensor_height_mm, spec.depth_mm, "jsn-sr04t")
    return bin_usage("b", rolling_fill(history.distance_mm, history.temp_c, calibration)).verdict


def test_busy_bins_overflow_often_and_idle_ones_never_fill() -> None:
    assert usage_of(0.4, seed=1) == "overflows often"      # 0.4 a day, emptied weekly
    assert usage_of(0.03, seed=2) == "never fills"
    assert usage_of(0.12, seed=3) == "fine"
    assert bin_usage("b", [np.nan] * 5).verdict == "too little data"


# Two weekly shapes the test states for itself: an even week, and one with a busy weekend
# (household waste rises after weekends; the factors are this test's assumption, not data).
EVEN_WEEK = (1.0,) * 7
BUSY_WEEKEND = (0.8, 0.85, 0.9, 1.0, 1.2, 1.6, 1.4)


@pytest.mark.parametrize("week", [EVEN_WEEK, BUSY_WEEKEND])
def test_dynamic_collection_beats_a_fixed_round_on_a_simulated_street(week: tuple[float, ...]) -> None:
    rng = np.random.default_rng(0)
    n = 120
    fixed, dynamic = simulate_policies(-0.76 + rng.normal(0, 0.03, n), 52.04 + rng.normal(0, 0.02, n),
                                       rng.uniform(0.05, 0.4, n), rng.integers(0, 7, n), (-0.76, 52.04),
                                       weekday_factor=week, weeks=6)
    assert dynamic.collections < fixed.collections
    assert dynamic.overflow_days < fixed.overflow_days
    assert dynamic.distance_km < fixed.distance_km
    assert "collections" in dynamic.line()
    with pytest.raises(ValueError, match="seven values"):
        simulate_policies(np.zeros(1), np.zeros(1), np.ones(1), np.zeros(1, dtype=np.int64), (0.0, 0.0),
                          weekday_factor=(1.0,) * 5)
