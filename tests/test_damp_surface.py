"""Cold-spot surface conditions: ISO 13788 checks, surface RH, the nearest outdoor sensor."""

import numpy as np
import pytest

from rules import psychro
from rules.damp import surface
from rules.errors import InvalidHomeSettings


@pytest.mark.parametrize(("indoor", "rh", "outdoor", "expected"), [(20, 60, 0, 0.772), (21, 50, -3, 0.690)])
def test_iso_13788_minimum_temperature_factor(indoor: float, rh: float, outdoor: float,
                                              expected: float) -> None:
    assert surface.minimum_f_rsi(indoor, rh, outdoor) == pytest.approx(expected, abs=0.0015)


def test_at_the_minimum_factor_the_surface_is_at_80_percent() -> None:
    f_min = surface.minimum_f_rsi(20, 60, 0)
    t_si = surface.surface_temperature(20, 0, f_min)
    assert float(surface.surface_rh(20, 60, t_si)) == pytest.approx(80.0, abs=1e-6)
    # a better wall (fRsi 0.9) is drier at the surface, a worse one (0.6) wetter
    assert float(surface.surface_rh(20, 60, surface.surface_temperature(20, 0, 0.9))) < 80
    assert float(surface.surface_rh(20, 60, surface.surface_temperature(20, 0, 0.6))) > 80


def test_surface_temperature_formula_and_condensation_above_100() -> None:
    assert float(surface.surface_temperature(20, 0, 0.75)) == pytest.approx(15.0)
    # below the air's dew point the surface "RH" passes 100 %: water condenses
    dew = float(psychro.dew_point(18, 80))
    assert float(surface.surface_rh(18, 80, dew - 1)) > 100
    assert float(surface.surface_rh(18, 80, dew)) == pytest.approx(100.0, abs=1e-6)


@pytest.mark.parametrize("f_rsi", [0.0, -0.2, 1.2, float("nan")])
def test_impossible_temperature_factor_is_refused(f_rsi: float) -> None:
    with pytest.raises(InvalidHomeSettings) as caught:
        surface.surface_temperature(20, 0, f_rsi)
    assert caught.value.setting == "f_rsi"


def test_nearest_outdoor_sensor_within_distance_else_fallback() -> None:
    # Bristol: home A 140 m from sensor 0, home B ~1.2 km from it, home C 40 km away, home D unlocated
    homes_lon = [-2.590, -2.600, -2.0, np.nan]
    homes_lat = [51.450, 51.460, 51.45, np.nan]
    nearest = surface.nearest_outdoor_sensors(homes_lon, homes_lat, [-2.7, -2.591], [51.46, 51.451], 2_000)
    assert nearest.index.tolist() == [1, 1, -1, -1]
    assert 100 < nearest.distance_m[0] < 180 and 1_000 < nearest.distance_m[1] < 1_400
    sensors = np.array([[9.0, 9.0, 9.0], [1.0, np.nan, 3.0]])
    outdoor, assumed = surface.outdoor_series(nearest, sensors, np.array([5.0, 5.0, 6.0, 7.0]))
    assert outdoor.tolist() == [[1.0, 5.0, 3.0], [1.0, 5.0, 3.0], [6.0, 6.0, 6.0], [7.0, 7.0, 7.0]]
    assert assumed.sum(axis=1).tolist() == [1, 1, 3, 3]
    notes = surface.fallback_notes(nearest, assumed, [5.0, 5.0, 6.0, 7.0], 2_000)
    assert "missed 1 hours" in notes[0] and "No outdoor sensor within 2.0 km: assumed 6.0" in notes[2]


def test_no_sensors_at_all_means_everyone_uses_the_fallback() -> None:
    nearest = surface.nearest_outdoor_sensors([-2.59], [51.45], [], [], 5_000)
    outdoor, assumed = surface.outdoor_series(nearest, np.empty((0, 2)), 4.0)
    assert nearest.index.tolist() == [-1] and outdoor.tolist() == [[4.0, 4.0]] and assumed.all()
