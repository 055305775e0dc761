"""Psychrometrics: the check values of docs/science.md#dew-point-and-frost-point, PsychroLib as the oracle,
properties, bad input."""

import numpy as np
import psychrolib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import psychro
from rules.errors import InvalidReading

psychrolib.SetUnitSystem(psychrolib.SI)

temps = st.floats(min_value=-40, max_value=60, allow_nan=False)
# RH at or below 1 reads as a fraction passed as percent (refused); properties hold above it
humidities = st.floats(min_value=1.01, max_value=100, allow_nan=False)


@pytest.mark.parametrize(("temp", "rh", "expected"), [(20, 50, 9.26), (35, 95, 34.08), (-5, 85, -7.13)])
def test_dew_point_check_values(temp: float, rh: float, expected: float) -> None:
    assert float(psychro.dew_point(temp, rh)) == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize(("temp", "rh", "expected"), [(25, 10, -8.77), (50, 90, 47.90)])
def test_sensirion_check_values_with_their_constants_and_close_with_ours(temp: float, rh: float,
                                                                         expected: float) -> None:
    # Sensirion's note uses a=17.62, b=243.12: exact with those, within 0.02 with Alduchov-Eskridge
    assert float(psychro.dew_point(temp, rh, magnus=psychro.SENSIRION)) == pytest.approx(expected, abs=0.005)
    assert float(psychro.dew_point(temp, rh)) == pytest.approx(expected, abs=0.02)


def test_frost_point_check_value_and_it_comes_before_the_dew_point() -> None:
    frost = float(psychro.frost_point(-5, 85))
    assert frost == pytest.approx(-6.32, abs=0.005)
    assert frost > float(psychro.dew_point(-5, 85))


def test_saturation_gives_the_air_temperature_and_vectors_work() -> None:
    temps_c = np.array([-10.0, 0.0, 12.5, 30.0])
    assert np.allclose(psychro.dew_point(temps_c, np.full(4, 100.0)), temps_c, atol=1e-9)
    assert psychro.saturation_vapour_pressure(0.0) == pytest.approx(6.1094)
    assert psychro.saturation_vapour_pressure(0.0, over="ice") == pytest.approx(6.1121)
    # at 20 degC, 50 %: 8.6 g/m3 of water vapour (a standard table value)
    assert float(psychro.absolute_humidity(20, 50)) == pytest.approx(8.63, abs=0.02)


@settings(max_examples=300, deadline=None)
# Magnus-AE drifts past 0.05 degC only above 48 degC air (0.054 at 50): beyond a home's range.
@given(temp=st.floats(min_value=0.01, max_value=48), rh=st.floats(min_value=2, max_value=100))
def test_agrees_with_psychrolib_above_zero(temp: float, rh: float) -> None:
    # PsychroLib (Hyland-Wexler) saturates over ice below 0 degC, so where its answer is below
    # zero it is a frost point: compare like with like.
    oracle = psychrolib.GetTDewPointFromRelHum(temp, rh / 100.0)
    ours = psychro.dew_point(temp, rh) if oracle >= 0 else psychro.frost_point(temp, rh)
    assert float(ours) == pytest.approx(oracle, abs=0.05)


@given(temp=temps, rh=humidities)
def test_dew_point_never_exceeds_air_temperature(temp: float, rh: float) -> None:
    assert float(psychro.dew_point(temp, rh)) <= temp + 1e-9


@given(temp=st.floats(min_value=-40, max_value=-0.01), rh=humidities)
def test_frost_point_at_or_above_dew_point_below_zero(temp: float, rh: float) -> None:
    assert float(psychro.frost_point(temp, rh)) >= float(psychro.dew_point(temp, rh)) - 1e-9


@pytest.mark.parametrize("rh", [-1.0, 100.5, float("nan"), 250.0])
def test_humidity_outside_0_to_100_is_refused(rh: float) -> None:
    with pytest.raises(InvalidReading) as caught:
        psychro.dew_point(20, rh)
    assert caught.value.quantity == "rh"


def test_fractions_passed_as_percent_are_caught() -> None:
    with pytest.raises(InvalidReading, match="fraction") as caught:
        psychro.dew_point([20, 21], [0.55, 0.6])
    assert "100" in caught.value.hint


def test_zero_humidity_has_no_dew_point_and_no_warning() -> None:
    assert float(psychro.dew_point(20, 0)) == -np.inf
    assert float(psychro.frost_point(-5, 0)) == -np.inf


def test_a_temperature_that_is_not_one_is_refused() -> None:
    with pytest.raises(InvalidReading, match="not a temperature"):
        psychro.dew_point(-300, 50)
