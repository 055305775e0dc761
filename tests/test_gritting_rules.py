"""The gritting rule table and decisions: edges, wet against dry, dew point against frost point."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import psychro
from rules.gritting import decide
from rules.gritting.decide import Conditions, DecisionSettings, RoutePolicy
from rules.gritting.estimate import frost_point_from_dew
from rules.gritting.rates import MATRICES, SNOW_HEAVY, SNOW_LIGHT, SNOW_NONE, Salt, spread_rates

NOW = datetime(2026, 1, 6, 18, 0, tzinfo=UTC)
TIMES = [NOW + timedelta(hours=h) for h in range(13)]
M = len(TIMES)


def rate(rst: float, *, wet: bool = False, salt: Salt = "dry", snow: int = SNOW_NONE, matrix: str = "ts2010",
         ice: bool = False, frost: bool = True) -> tuple[float, int, str]:
    r = spread_rates(np.array([rst]), np.array([wet]), np.array([snow]), np.array([frost]), salt, MATRICES[matrix],
                     np.array([ice]))
    return float(r.per_pass_g_m2[0]), int(r.passes[0]), r.row[0]


# Transport Scotland (2010), Appendix D, the revised salt treatment matrix (dry / pre-wetted):
# frost >= -2: 8/8; -2 > RST > -5: dry or damp 10/9, wet 16/15; -5 >= RST > -10: 18/18, wet 2x15/2x15
@pytest.mark.parametrize(("rst", "wet", "salt", "expected"), [
    (-2.0, False, "dry", (8.0, 1)), (-2.0, True, "dry", (8.0, 1)), (-2.0, True, "prewet", (8.0, 1)),
    (-1.0, True, "dry", (8.0, 1)),
    (-2.01, False, "dry", (10.0, 1)), (-2.01, False, "prewet", (9.0, 1)),
    (-2.01, True, "dry", (16.0, 1)), (-2.01, True, "prewet", (15.0, 1)),
    (-4.99, True, "dry", (16.0, 1)), (-4.99, False, "dry", (10.0, 1)),
    (-5.0, False, "dry", (18.0, 1)), (-5.0, False, "prewet", (18.0, 1)),
    (-5.0, True, "dry", (15.0, 2)), (-5.0, True, "prewet", (15.0, 2)),
    (-9.99, False, "dry", (18.0, 1)), (-9.99, True, "dry", (15.0, 2)),
])
def test_the_transport_scotland_table_at_its_edges(rst: float, wet: bool, salt: Salt,
                                                   expected: tuple[float, int]) -> None:
    per_pass, passes, row = rate(rst, wet=wet, salt=salt)
    assert (per_pass, passes) == expected
    assert ("two treatments" in row) == (passes == 2)
    assert ("pre-wetted" in row) == (salt == "prewet")


# NWSRG Practical Guide (2016), the precautionary matrices as shipped in rules/gritting/rates.py:
# bands >= -2, -2..-5, -5..-7, -7..-10, -10..-15; the edge values belong to the colder band below -2.
@pytest.mark.parametrize(("rst", "wet", "salt", "expected"), [
    (-2.0, False, "dry", (8.0, 1)), (-2.01, True, "dry", (13.0, 1)), (-5.0, False, "dry", (13.0, 1)),
    (-5.0, True, "dry", (20.0, 1)), (-7.0, True, "dry", (14.0, 2)), (-10.0, False, "dry", (25.0, 1)),
    (-14.9, True, "dry", (19.0, 2)), (-7.5, True, "prewet", (12.0, 2)), (-3.0, False, "treated", (7.0, 1)),
])
def test_the_nwsrg_matrix_bands(rst: float, wet: bool, salt: Salt, expected: tuple[float, int]) -> None:
    assert rate(rst, wet=wet, salt=salt, matrix="nwsrg")[:2] == expected


def test_below_the_last_band_says_so() -> None:
    for wet in (False, True):
        per_pass, passes, row = rate(-10.0, wet=wet)
        assert per_pass * passes == (30.0 if wet else 18.0)
        assert "beyond the matrix" in row and "grit" in row
    assert "beyond the matrix" not in rate(-9.99)[2]
    assert "beyond the matrix" in rate(-15.0, matrix="nwsrg")[2]


def test_snow_rows() -> None:
    assert rate(3.0, snow=SNOW_LIGHT)[:2] == (20.0, 1)
    assert rate(3.0, snow=SNOW_LIGHT, salt="prewet")[:2] == (18.0, 1)
    per_pass, passes, row = rate(3.0, snow=SNOW_HEAVY)
    assert (per_pass, passes) == (20.0, 2) and "two treatments" in row
    # frost at -6 on a wet road (2 x 15 = 30) and light snow (20): the heavier wins
    assert rate(-6.0, wet=True, snow=SNOW_LIGHT)[:2] == (15.0, 2)


@pytest.mark.parametrize("matrix", ["nwsrg", "ts2010"])
def test_ice_on_the_road_takes_the_ice_rows(matrix: str) -> None:
    # both matrices: ice formed above -5 degC 20 g/m2, at or below -5 degC 2 x 20 (issue 17: the old table gave
    # ice at -1 degC the frost rate of 8 and at -6 degC 2 x 15)
    assert rate(-1.0, ice=True, matrix=matrix)[:2] == (20.0, 1)
    assert rate(-4.99, ice=True, matrix=matrix)[:2] == (20.0, 1)
    assert rate(-5.0, ice=True, matrix=matrix)[:2] == (20.0, 2)
    per_pass, passes, row = rate(-6.0, ice=True, wet=True, matrix=matrix)
    assert (per_pass, passes) == (20.0, 2) and "ice formed" in row
    # an unknown road temperature with ice: the coldest row, never the mildest
    assert rate(float("nan"), ice=True, matrix=matrix, frost=False)[:2] == (20.0, 2)
    assert rate(float("nan"), snow=SNOW_HEAVY, matrix=matrix, frost=False)[:2] == (20.0, 2)


TS2010 = DecisionSettings(matrix=MATRICES["ts2010"])


def conditions(rst: list[list[float]] | np.ndarray, *, fp: float | list[float] = -20.0,
               state: int | list[int] = decide.DRY, rain_from: int = M, snow: int = SNOW_NONE, snow_from: int = M,
               length: float = 100.0, width: float = 7.0) -> Conditions:
    rst = np.atleast_2d(np.asarray(rst, dtype=np.float64))
    n = rst.shape[0]
    fps = np.broadcast_to(np.asarray(fp, dtype=np.float64).reshape(-1, 1), (n, rst.shape[1])).copy()
    return Conditions(TIMES[:rst.shape[1]], rst, fps, np.broadcast_to(np.asarray(state), (n,)).astype(np.int64),
                      np.full(n, rain_from), np.full(n, snow), np.full(n, snow_from), np.full(n, length),
                      np.full(n, width))


def cooling(start: float, end: float) -> list[float]:
    return list(np.linspace(start, end, M))


def test_wet_road_at_the_trigger_is_treated_a_dry_one_is_not() -> None:
    s = DecisionSettings()
    wet = decide.decide_segments(conditions([cooling(4, 1.0)], state=decide.WET), s)
    assert decide.ACTIONS[wet.action[0]] == "treat"
    assert "wet road" in wet.reason[0] and "+1.0 °C" in wet.reason[0] and "at 06:00" in wet.reason[0]
    assert wet.rate_g_m2[0] == 8.0 and wet.salt_kg[0] == pytest.approx(8.0 * 100 * 7 / 1000)
    assert wet.hazard_at(0, TIMES) == TIMES[-1]
    dry = decide.decide_segments(conditions([cooling(4, 1.0)], state=decide.DRY), s)
    assert decide.ACTIONS[dry.action[0]] == "none" and dry.salt_kg[0] == 0
    assert "dry road" in dry.reason[0]
    above = decide.decide_segments(conditions([cooling(4, 1.01), cooling(4, 2.01)], state=decide.DAMP), s)
    assert [decide.ACTIONS[a] for a in above.action] == ["monitor", "none"]
    assert "within 1 °C above the trigger" in above.reason[0]


def test_rain_forecast_makes_a_dry_road_wet_from_then_and_picks_the_wet_column() -> None:
    d = decide.decide_segments(conditions([cooling(2, -3)], state=decide.DRY, rain_from=4), TS2010)
    assert decide.ACTIONS[d.action[0]] == "treat"
    assert "rain forecast at 22:00" in d.reason[0] and d.rate_g_m2[0] == 16.0


def test_hoar_frost_example_frost_point_not_dew_point() -> None:
    """Air -5 degC, RH 85 %: dew point -7.13, frost point -6.32; a dry road at -6.5 gets hoar frost."""
    dew = float(psychro.dew_point(-5.0, 85.0))
    frost = float(psychro.frost_point(-5.0, 85.0))
    assert (round(dew, 2), round(frost, 2)) == (-7.13, -6.32)
    assert float(frost_point_from_dew(dew)) == pytest.approx(frost, abs=1e-9)
    road = [[-6.5] * M]
    d = decide.decide_segments(conditions(road, fp=frost, state=decide.DRY), TS2010)
    assert decide.ACTIONS[d.action[0]] == "treat"
    assert "hoar frost" in d.reason[0] and "-6.3 °C" in d.reason[0]
    assert d.rate_g_m2[0] == 18.0        # -5 >= RST > -10, dry road (Transport Scotland)
    # a rule on the dew point would miss it: -6.5 is above the dew point -7.13
    late = decide.decide_segments(conditions(road, fp=dew, state=decide.DRY), DecisionSettings())
    assert decide.ACTIONS[late.action[0]] != "treat"
    # just above the frost point, dry: watch it
    near = decide.decide_segments(conditions([[-6.2] * M], fp=frost, state=decide.DRY), DecisionSettings())
    assert decide.ACTIONS[near.action[0]] == "monitor" and "near the frost point" in near.reason[0]


def test_snow_ice_unknown_state_and_unknown_temperature() -> None:
    s = DecisionSettings()
    snow = decide.decide_segments(conditions([[3.0] * M], snow=SNOW_LIGHT, snow_from=5, rain_from=5), s)
    assert decide.ACTIONS[snow.action[0]] == "treat" and "light snow forecast at 23:00" in snow.reason[0]
    assert snow.rate_g_m2[0] == 20.0 and snow.hazard_at(0, TIMES) == TIMES[5]
    ice = decide.decide_segments(conditions([[2.5] * M], state=decide.ICE), s)
    assert decide.ACTIONS[ice.action[0]] == "treat" and "ice on the road now" in ice.reason[0]
    unknown_state = decide.decide_segments(conditions([cooling(3, 0)], state=decide.UNKNOWN), s)
    assert decide.ACTIONS[unknown_state.action[0]] == "treat" and "taken as damp" in unknown_state.reason[0]
    nothing = decide.decide_segments(conditions([[np.nan] * M]), s)
    assert decide.ACTIONS[nothing.action[0]] == "monitor" and "no road surface temperature" in nothing.reason[0]
    assert np.isnan(nothing.rst_min[0]) and nothing.salt_kg[0] == 0


def test_route_policy_priority_one_or_share_of_length() -> None:
    d = decide.decide_segments(conditions([cooling(3, -1), [5.0] * M, [5.0] * M], state=decide.WET),
                               DecisionSettings())
    members = np.arange(3)
    names = ["A38", "B1", "B2"]
    length = np.array([100.0, 100.0, 100.0])
    urgent = decide.decide_route("r", members, np.array([1, 2, 2]), names, d, length, TIMES, RoutePolicy())
    assert urgent.send and "priority-1" in urgent.reason and urgent.freeze_at is not None
    minor = decide.decide_route("r", members, np.array([2, 2, 2]), names, d, length, TIMES, RoutePolicy())
    assert minor.send and "more than 20%" in minor.reason          # a third of the length
    strict = decide.decide_route("r", members, np.array([2, 2, 2]), names, d, length, TIMES,
                                 RoutePolicy(send_share=0.5))
    assert not strict.send and "not sent" in strict.reason
    assert decide.latest_start(TIMES[4], 1.5) == TIMES[4] - timedelta(hours=1.5)


temps = st.floats(-25, 15, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(rst=st.lists(temps, min_size=M, max_size=M), fp=st.floats(-25, 5), state=st.sampled_from([-1, 0, 1, 2, 3]),
       rain=st.integers(0, M), snow=st.sampled_from([0, 1, 2]), salt=st.sampled_from(["dry", "prewet", "treated"]),
       matrix=st.sampled_from(sorted(MATRICES)), colder=st.floats(0, 10), length=st.floats(1, 2000),
       width=st.floats(2, 20))
def test_invariants(rst: list[float], fp: float, state: int, rain: int, snow: int, salt: Salt, matrix: str,
                    colder: float, length: float, width: float) -> None:
    s = DecisionSettings(salt=salt, matrix=MATRICES[matrix])
    c = conditions([rst, list(np.asarray(rst) - colder)], fp=fp, state=state, rain_from=rain, snow=snow,
                   snow_from=rain if snow else M, length=length, width=width)
    d = decide.decide_segments(c, s)
    assert (d.salt_kg >= 0).all()
    for k in range(2):
        assert d.reason[k]
        if d.action[k] == decide.TREAT:
            assert d.rate_g_m2[k] > 0 and d.salt_kg[k] > 0 and d.hazard_index[k] >= 0
        else:
            assert d.rate_g_m2[k] == 0 and d.salt_kg[k] == 0
    # the same road, colder: never a lighter treatment, never a milder action
    assert d.rate_g_m2[1] >= d.rate_g_m2[0]
    assert d.action[1] >= d.action[0]


@settings(max_examples=200, deadline=None)
@given(a=temps, b=temps, wet=st.booleans(), snow=st.sampled_from([0, 1, 2]), ice=st.booleans(),
       salt=st.sampled_from(["dry", "prewet", "treated"]), matrix=st.sampled_from(sorted(MATRICES)))
def test_a_colder_road_never_gets_less_salt(a: float, b: float, wet: bool, snow: int, ice: bool, salt: Salt,
                                            matrix: str) -> None:
    warm, cold = max(a, b), min(a, b)
    r = spread_rates(np.array([warm, cold]), np.array([wet, wet]), np.array([snow, snow]), np.array([True, True]),
                     salt, MATRICES[matrix], np.array([ice, ice]))
    assert r.total_g_m2[1] >= r.total_g_m2[0] > 0


@settings(max_examples=200, deadline=None)
@given(rst=temps, wet=st.booleans(), frost=st.booleans(), ice=st.booleans(), snow=st.sampled_from([0, 1, 2]),
       matrix=st.sampled_from(sorted(MATRICES)))
def test_adding_a_snow_forecast_never_lowers_the_rate(rst: float, wet: bool, frost: bool, ice: bool, snow: int,
                                                      matrix: str) -> None:
    def total(snow_class: int) -> float:
        r = spread_rates(np.array([rst]), np.array([wet]), np.array([snow_class]), np.array([frost]), "dry",
                         MATRICES[matrix], np.array([ice]))
        return float(r.total_g_m2[0])
    assert total(snow) >= total(SNOW_NONE)
    assert total(SNOW_HEAVY) >= total(SNOW_LIGHT) >= total(SNOW_NONE)


def test_a_route_blind_on_priority_one_is_unknown_in_winter_and_never_not_needed() -> None:
    """Issue 17 fail-safe: no usable temperature on a priority-1 segment in the winter season is the duty
    officer's decision ('unknown'); outside the season it is 'not needed' with the blind segments named."""
    d = decide.decide_segments(conditions([[np.nan] * M, [5.0] * M, [5.0] * M], state=decide.WET),
                               DecisionSettings())
    members, names, length = np.arange(3), ["A38", "B1", "B2"], np.full(3, 100.0)
    winter = decide.decide_route("r", members, np.array([1, 2, 2]), names, d, length, TIMES, RoutePolicy())
    assert winter.decision == "unknown" and not winter.send and "A38" in winter.reason
    summer = decide.decide_route("r", members, np.array([1, 2, 2]), names, d, length, TIMES,
                                 RoutePolicy(winter=False))
    assert summer.decision == "not_needed" and "without any temperature" in summer.reason
    # a temperature that is only the network's average of far sensors does not count
    known = decide.decide_segments(conditions([[5.0] * M] * 3, state=decide.WET), DecisionSettings())
    far = decide.decide_route("r", members, np.array([1, 2, 2]), names, known, length, TIMES, RoutePolicy(),
                              usable=np.array([False, True, True]))
    assert far.decision == "unknown"
    # a route that must be sent is sent, blind or not (the safer of the two)
    cold = decide.decide_segments(conditions([[np.nan] * M, cooling(2, -2), [5.0] * M], state=decide.WET),
                                  DecisionSettings())
    sent = decide.decide_route("r", members, np.array([1, 1, 2]), names, cold, length, TIMES, RoutePolicy())
    assert sent.decision == "send" and "patrol them" in sent.reason
