"""Risk per home: a simulated damp home rates high, a dry one none; faults are reported, not believed."""

import numpy as np
import pytest

from rules.damp import mould, risk
from rules.damp.quality import HourlySeries
from rules.damp.risk import HomeInputs
from simulation.synthetic import damp as synthetic
from simulation.synthetic.damp import DAMP_COLD_HOME, DRY_WARM_HOME, Climate

DAYS = 37


def inputs_for(homes: int, outdoor: np.ndarray, cls: mould.Sensitivity = mould.Sensitivity.SENSITIVE
               ) -> HomeInputs:
    return HomeInputs(f_rsi=np.full(homes, 0.75), classes=mould.ClassArrays.for_homes(cls, homes),
                      outdoor_c=outdoor)


def simulate(climates: list[Climate], days: int = DAYS) -> tuple[HourlySeries, HomeInputs]:
    times, temp, rh, outdoor = synthetic.five_minute_readings(climates, days, seed=7)
    return synthetic.hourly(times, temp, rh), inputs_for(len(climates), synthetic.hourly_outdoor(outdoor))


def test_a_cold_damp_home_rates_high_and_a_warm_dry_one_none_with_reasons_from_the_data() -> None:
    series, inputs = simulate([DAMP_COLD_HOME, DRY_WARM_HOME])
    (damp, dry), state = risk.recompute(series, inputs)
    assert damp.level == "high"
    assert dry.level == "none"
    week = slice(-risk.WEEK_H, None)
    # the reasons quote the numbers the data gives: recompute them independently here
    t_si = inputs.outdoor_c + 0.75 * (series.air_temp - inputs.outdoor_c)
    from rules import psychro
    saturation = psychro.OVER_WATER.saturation
    rh_si = series.rh * saturation(series.air_temp) / saturation(t_si)
    damp_hours = int((rh_si[0, week] >= 80).sum())
    wet_hours = int((rh_si[0, week] >= 100).sum())
    assert damp_hours == 168 and wet_hours > 0
    text = " ".join(damp.reasons)
    assert f"for {damp_hours} of the last 168 hours" in text
    assert f"condensed on the coldest wall for {wet_hours} hours" in text
    assert f"Mould index {state.index[0]:.1f} of 6" in text and "ASHRAE 160" in text
    assert "stayed below 80 % humidity for all 168 hours" in " ".join(dry.reasons)
    assert "ASHRAE" not in " ".join(dry.reasons) and dry.faults == () and damp.faults == ()
    assert damp.metrics["damp_hours_7d"] == damp_hours
    assert any("mould index rose" in change for change in damp.changes)


def one_home(usable: int = 168, damp: int = 0, wet: int = 0, rh30: float = 60.0, indoor_rh: float = 45.0
             ) -> risk.Metrics:
    def ints(v: int) -> np.ndarray:
        return np.array([v])

    return risk.Metrics(ints(usable), ints(damp), ints(wet), ints(damp * 4), ints(wet * 4), np.array([rh30]),
                        np.array([12.0]), np.array([20.0]), np.array([indoor_rh]), np.array([rh30 >= 80]))


@pytest.mark.parametrize(("metrics", "index", "expected"), [
    (one_home(), 0.0, "none"),
    (one_home(indoor_rh=62), 0.0, "low"),
    (one_home(damp=5), 0.0, "low"),
    (one_home(), 0.05, "low"),
    (one_home(damp=24), 0.0, "medium"),
    (one_home(wet=1, damp=1), 0.0, "medium"),
    (one_home(), 0.5, "medium"),
    (one_home(rh30=85, damp=10), 0.0, "medium"),
    (one_home(), 1.0, "high"),
    (one_home(wet=24, damp=24), 0.0, "high"),
    (one_home(rh30=85, damp=84), 0.0, "high"),
    (one_home(), 3.0, "severe"),
    (one_home(wet=48, damp=48), 1.0, "severe"),
    (one_home(usable=83, damp=83, wet=83), 4.0, "unknown"),
])
def test_each_level_rule(metrics: risk.Metrics, index: float, expected: str) -> None:
    assert str(risk.levels(metrics, np.array([index]))[0]) == expected


def test_more_sensitive_walls_grow_more_mould_in_the_same_home() -> None:
    series, inputs = simulate([DAMP_COLD_HOME])
    order = list(mould.Sensitivity)  # most sensitive first
    rated = [risk.recompute(series, inputs_for(1, inputs.outdoor_c, cls))[0][0] for cls in order]
    indices = [a.mould_index for a in rated]
    assert indices == sorted(indices, reverse=True) and indices[0] > 2 > indices[1]
    # the surface is damp all week whatever the wall: every class still rates at least high
    assert {a.level for a in rated} == {"high"}


def _with(series: HourlySeries, home: int, hours: slice, **values: float) -> HourlySeries:
    names = ("air_temp", "rh", "rh_min", "rh_max", "readings")
    arrays = {name: getattr(series, name).copy() for name in names}
    for name, value in values.items():
        arrays[name][home, hours] = value
    return HourlySeries(hours=series.hours, **arrays)


def test_humidity_stuck_at_100_for_days_is_a_fault_not_a_saturated_home() -> None:
    series, inputs = simulate([DRY_WARM_HOME, DRY_WARM_HOME], days=14)
    stuck = _with(series, 0, slice(-24 * 5, None), rh=100.0, rh_min=100.0, rh_max=100.0)
    (faulty, fine), _ = risk.recompute(stuck, inputs)
    assert any("read 100 % without moving for 5.0 days" in f for f in faulty.faults)
    assert faulty.level == "unknown"          # 5 of 7 days unusable: no confident answer
    assert faulty.metrics["condensation_hours_7d"] == 0 and fine.level == "none"
    assert "Not enough good readings" in faulty.reasons[0]


def test_a_few_hours_at_100_are_believed_as_condensation() -> None:
    series, inputs = simulate([DRY_WARM_HOME], days=14)
    shower = _with(series, 0, slice(-10, -7), rh=100.0, rh_min=99.6, rh_max=100.0, air_temp=20.0)
    (home,), _ = risk.recompute(shower, inputs)
    assert home.faults == () and home.metrics["condensation_hours_7d"] == 3 and home.level == "medium"


def test_humidity_pinned_at_0_is_a_fault() -> None:
    series, inputs = simulate([DAMP_COLD_HOME], days=14)
    pinned = _with(series, 0, slice(-24 * 3, None), rh=0.0, rh_min=0.0, rh_max=0.0)
    (home,), _ = risk.recompute(pinned, inputs)
    assert any("read 0 % without moving for 3.0 days" in f for f in home.faults)
    assert "Based on 96 of 168 hours" in " ".join(home.reasons)


def test_fractions_passed_as_percent_are_not_used() -> None:
    series, inputs = simulate([DAMP_COLD_HOME], days=10)
    fractions = HourlySeries(series.hours, series.air_temp, series.rh / 100, series.rh_min / 100,
                             series.rh_max / 100, series.readings)
    (home,), state = risk.recompute(fractions, inputs)
    assert home.level == "unknown" and state.index[0] == 0
    assert any("fraction (0..1)" in f for f in home.faults)


def test_missing_hours_and_a_clock_that_jumped_are_reported() -> None:
    series, inputs = simulate([DAMP_COLD_HOME], days=10)
    gappy = _with(series, 0, slice(-40, -10), readings=0, air_temp=np.nan, rh=np.nan, rh_min=np.nan,
                  rh_max=np.nan)
    jumped = _with(gappy, 0, slice(-5, -3), readings=24)
    (home,), _ = risk.recompute(jumped, inputs, future_readings=[6])
    faults = " ".join(home.faults)
    assert "No readings for 30 of 240 hours" in faults and "longest gap 30 hours" in faults
    assert "2 hours had more readings than the box takes" in faults
    assert "6 readings are dated in the future" in faults
    assert home.metrics["usable_hours_7d"] == 168 - 30 - 2 and home.level != "unknown"


@pytest.mark.parametrize("bad", [{"rh": 130.0, "rh_max": 131.0}, {"air_temp": 95.0}])
def test_impossible_values_are_dropped_and_counted(bad: dict[str, float]) -> None:
    series, inputs = simulate([DRY_WARM_HOME], days=10)
    (home,), _ = risk.recompute(_with(series, 0, slice(-6, None), **bad), inputs)
    assert any(f.startswith("6 hours had impossible values") for f in home.faults)
    assert home.metrics["usable_hours_7d"] == 162
