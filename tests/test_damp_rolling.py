"""The one-hour-at-a-time path gives the same assessments as recomputing the whole window."""

import numpy as np
import pytest

from rules.damp import mould, risk
from rules.damp.quality import HourlySeries
from rules.damp.risk import HomeInputs
from rules.damp.rolling import HourInput, RollingDamp
from simulation.synthetic import damp as synthetic
from simulation.synthetic.damp import DAMP_COLD_HOME, DRY_WARM_HOME, Climate


def feed(series: HourlySeries, outdoor: np.ndarray, classes: mould.ClassArrays) -> RollingDamp:
    rolling = RollingDamp(np.full(series.homes, 0.75), classes)
    for h in range(series.air_temp.shape[1]):
        rolling.push_hour(HourInput.from_series(series, h, outdoor[:, h]))
    return rolling


def test_rolling_hours_match_a_whole_window_recompute() -> None:
    climates = [DAMP_COLD_HOME, DRY_WARM_HOME, Climate(17.0, 68.0, 4.0), Climate(19.0, 60.0, 1.0, noise_rh=4.0)]
    times, temp, rh, outdoor = synthetic.five_minute_readings(climates, 40, seed=11)
    temp[2, 3000:3600] = np.nan                   # 50 hours offline
    rh[3, 9000:9012] = 140.0                      # an impossible hour
    series = synthetic.hourly(times, temp, rh)
    series.readings[1, -30] = 30                  # the clock jumped back
    outdoor_h = synthetic.hourly_outdoor(outdoor)
    classes = mould.ClassArrays.for_homes(mould.Sensitivity.SENSITIVE, 4)
    rolling = feed(series, outdoor_h, classes)
    inputs = HomeInputs(np.full(4, 0.75), classes, outdoor_h)
    whole, state = risk.recompute(series, inputs)
    fast = rolling.assessments()
    assert [a.level for a in fast] == [a.level for a in whole]
    assert len({a.level for a in whole}) >= 3     # the homes differ, so the comparison means something
    assert np.allclose(rolling.state.index, state.index, atol=1e-9)
    for one, other in zip(fast, whole, strict=True):
        assert one.changes == other.changes
        for key, value in other.metrics.items():
            assert one.metrics[key] == pytest.approx(value, abs=0.02), key
    faults = rolling.faults()
    assert any("No readings for 50 of 888 hours" in f for f in faults[2])
    assert any("1 hours had impossible values" in f for f in faults[3])
    assert any("1 hours had more readings" in f for f in faults[1])


def test_pinned_humidity_is_held_back_then_applied_or_dropped() -> None:
    times, temp, rh, outdoor = synthetic.five_minute_readings([DAMP_COLD_HOME, DAMP_COLD_HOME], 10, seed=2)
    rh[0, -12 * 30:] = 100.0                      # home 0: stuck for the last 30 hours
    rh[1, -12 * 30:-12 * 20] = 100.0              # home 1: a 10-hour spell at 100 %, then normal
    series = synthetic.hourly(times, temp, rh)
    classes = mould.ClassArrays.for_homes(mould.Sensitivity.VERY_SENSITIVE, 2)
    rolling = feed(series, synthetic.hourly_outdoor(outdoor), classes)
    stuck, spell = rolling.assessments()
    assert any("read 100 % without moving for 1.2 days" in f for f in stuck.faults)
    assert stuck.metrics["usable_hours_7d"] == 168 - 30
    assert spell.faults == () and spell.metrics["usable_hours_7d"] == 168
    assert spell.metrics["condensation_hours_7d"] >= 10
    assert spell.mould_index > stuck.mould_index  # the real wet spell grew mould, the stuck one did not
