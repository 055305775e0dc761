"""Priority scores, what makes a bin mandatory, and the reasons in words."""

import numpy as np
import pytest

from rules.bins.priority import PriorityInputs, score_bins


def bins(**columns: list) -> PriorityInputs:
    n = len(next(iter(columns.values())))
    defaults = {"hours_to_threshold": [48.0] * n, "overflow_risk": [0.0] * n, "hours_to_next_pass": [24.0] * n,
                "bin_type": ["general"] * n, "place": [""] * n, "complaints": [0] * n, "outdoor_c": [10.0] * n,
                "due_by_schedule": [False] * n, "has_event": [False] * n}
    defaults.update(columns)
    return PriorityInputs(device_ids=[f"b{i}" for i in range(n)],
                          **{k: np.array(v) for k, v in defaults.items()})


def test_sooner_scores_higher_and_past_the_threshold_before_the_pass_is_mandatory() -> None:
    result = score_bins(bins(hours_to_threshold=[0.0, 12.0, 60.0, np.inf]))
    assert list(result.score) == sorted(result.score, reverse=True) and result.score[0] > result.score[2]
    assert result.mandatory.tolist() == [True, True, False, False]
    assert result.reasons[0] == "at or past the threshold now"
    assert result.reasons[3] == "not filling"


def test_food_waste_is_sooner_in_warm_weather_only() -> None:
    warm = score_bins(bins(hours_to_threshold=[40.0, 40.0], bin_type=["general", "food"], outdoor_c=[20.0, 20.0]))
    cool = score_bins(bins(hours_to_threshold=[40.0, 40.0], bin_type=["general", "food"], outdoor_c=[5.0, 5.0]))
    assert warm.score[1] > warm.score[0] and "food waste in 20 °C" in warm.reasons[1]
    assert cool.score[1] == cool.score[0]
    assert warm.mandatory.tolist() == [False, True]        # 40 h counts as 20 h, before the pass in 24 h


def test_place_complaints_and_events_add_up_with_their_reasons() -> None:
    result = score_bins(bins(place=["", "town_centre", "school", ""], complaints=[0, 0, 0, 9],
                             has_event=[False, False, False, True]))
    plain, centre, school, alerted = result.score
    assert centre == pytest.approx(plain + 10) and school == pytest.approx(plain + 8)
    assert alerted == 100 and result.mandatory[3]
    assert "town centre" in result.reasons[1] and "9 complaints" in result.reasons[3]
    lone = score_bins(bins(complaints=[9]))
    assert lone.score[0] == pytest.approx(score_bins(bins(complaints=[0])).score[0] + 15)   # capped


def test_an_unknown_bin_is_visited_only_when_due_by_schedule() -> None:
    result = score_bins(bins(hours_to_threshold=[np.nan, np.nan], overflow_risk=[np.nan, np.nan],
                             due_by_schedule=[True, False]))
    assert result.unknown.tolist() == [True, True]
    assert result.mandatory.tolist() == [True, False]
    assert "state unknown, due by the fixed schedule" in result.reasons[0]
    assert "not due by the schedule" in result.reasons[1]


def test_ranked_puts_mandatory_bins_first() -> None:
    result = score_bins(bins(hours_to_threshold=[70.0, 10.0, 30.0], place=["town_centre", "", ""],
                             complaints=[3, 0, 0]))
    assert result.ranked()[0] == 1 and not result.mandatory[0]


def test_rows_must_line_up() -> None:
    with pytest.raises(ValueError, match="complaints has 1 rows for 2 bins"):
        bins(hours_to_threshold=[1.0, 2.0], complaints=[0])
