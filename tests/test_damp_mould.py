"""The VTT mould index: the constant-condition times of docs/science.md#vtt-mould-index, decline, properties,
the hourly state."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.damp import mould
from rules.damp.mould import ClassArrays, MouldState, Sensitivity
from rules.errors import InvalidHomeSettings

VERY = Sensitivity.VERY_SENSITIVE
ORDER = list(Sensitivity)  # most sensitive first


@pytest.mark.parametrize(("level", "rh", "days"), [(1, 97, 10.4), (3, 97, 20.8), (3, 90, 59.5)])
def test_constant_condition_times_within_5_percent(level: float, rh: float, days: float) -> None:
    reached = mould.days_to_reach(level, 20, rh, VERY)
    assert reached is not None and reached == pytest.approx(days, rel=0.05)


def test_levels_off_near_5_5_at_97_percent_and_stays_0_at_80() -> None:
    classes = ClassArrays.for_homes(VERY)
    hours = 24 * 200
    state, _ = mould.run_hours(MouldState.zeros(1), np.full((1, hours), 20.0), np.full((1, hours), 97.0),
                               classes)
    assert float(state.index[0]) == pytest.approx(5.5, abs=0.05)
    assert mould.days_to_reach(0.001, 20, 80, VERY, max_days=120) is None


def test_decline_in_a_dry_spell_follows_the_three_phases() -> None:
    classes = ClassArrays.for_homes(VERY)
    start = MouldState(np.array([2.0]), np.array([0.0]))
    state, history = mould.run_hours(start, np.full((1, 48), 20.0), np.full((1, 48), 50.0), classes,
                                     keep_history=True)
    assert history is not None
    drop = 2.0 - history[0]
    assert drop[5] == pytest.approx(0.032 * 6 / 24, abs=1e-6)             # first 6 h: -0.032/day
    assert drop[23] == pytest.approx(drop[5], abs=1e-6)                   # 6..24 h: flat
    assert drop[47] == pytest.approx(drop[5] + 0.016 * 24 / 24, abs=1e-6)  # then -0.016/day
    assert float(state.dry_hours[0]) == 48


def test_hours_without_data_hold_the_state() -> None:
    classes = ClassArrays.for_homes(VERY)
    start = MouldState(np.array([1.5]), np.array([3.0]))
    after = mould.step_hour(start, np.array([np.nan]), np.array([np.nan]), classes)
    assert after.index.tolist() == [1.5] and after.dry_hours.tolist() == [3.0]


def test_incremental_hours_equal_one_long_run() -> None:
    rng = np.random.default_rng(1)
    temp = rng.uniform(5, 25, (3, 500))
    rh = rng.uniform(70, 100, (3, 500))
    classes = ClassArrays.for_homes([VERY, Sensitivity.SENSITIVE, Sensitivity.RESISTANT])
    whole, _ = mould.run_hours(MouldState.zeros(3), temp, rh, classes)
    part, _ = mould.run_hours(MouldState.zeros(3), temp[:, :321], rh[:, :321], classes)
    for hour in range(321, 500):
        part = mould.step_hour(part, temp[:, hour], rh[:, hour], classes)
    assert np.array_equal(part.index, whole.index) and whole.index.max() > 0


@settings(max_examples=40, deadline=None)
@given(temp=st.floats(min_value=-10, max_value=55), rh=st.floats(min_value=0, max_value=100),
       start=st.floats(min_value=0, max_value=6), hours=st.integers(min_value=1, max_value=300))
def test_index_stays_within_0_and_6(temp: float, rh: float, start: float, hours: int) -> None:
    classes = ClassArrays.for_homes(ORDER)
    state = MouldState(np.full(4, start), np.zeros(4))
    state, _ = mould.run_hours(state, np.full((4, hours), temp), np.full((4, hours), rh), classes)
    assert np.all((state.index >= 0) & (state.index <= 6))


@settings(max_examples=25, deadline=None)
@given(temp=st.floats(min_value=1, max_value=45), rh=st.floats(min_value=80, max_value=100),
       days=st.integers(min_value=1, max_value=60))
def test_sensitivity_classes_are_ordered(temp: float, rh: float, days: int) -> None:
    classes = ClassArrays.for_homes(ORDER)
    shape = (4, days * 24)
    state, _ = mould.run_hours(MouldState.zeros(4), np.full(shape, temp), np.full(shape, rh), classes)
    assert np.all(np.diff(state.index) <= 1e-12), state.index


def test_an_unknown_class_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidHomeSettings, match="very_sensitive") as caught:
        mould.sensitivity("cardboard")
    assert caught.value.setting == "sensitivity"
    assert mould.sensitivity("resistant") is Sensitivity.RESISTANT
