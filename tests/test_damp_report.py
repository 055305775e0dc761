"""The landlord evidence page and the council's views: content from the data, nobody exposed."""

import re
from datetime import UTC, date, datetime
from xml.etree import ElementTree

import numpy as np
import shapely

from rules.damp import council, mould, report, risk
from rules.damp.council import HomeRisk
from rules.damp.risk import HomeInputs
from simulation.synthetic import damp as synthetic


def damp_home_evidence(reported_on: date | None) -> tuple[report.EvidenceInput, int]:
    times, temp, rh, outdoor = synthetic.five_minute_readings([synthetic.DAMP_COLD_HOME], 21, seed=5)
    series = synthetic.hourly(times, temp, rh)
    out = synthetic.hourly_outdoor(outdoor)
    inputs = HomeInputs(np.full(1, 0.75), mould.ClassArrays.for_homes(mould.Sensitivity.SENSITIVE, 1), out)
    quality = risk.screen(series)
    cold = risk.surface_series(series, inputs, quality)
    _, history = mould.run_hours(mould.MouldState.zeros(1), cold.temp_c, cold.rh_pct, inputs.classes,
                                 keep_history=True)
    assert history is not None
    (latest,), _ = risk.recompute(series, inputs)
    damp_hours = int((cold.rh_pct[0] >= 80).sum())
    return report.EvidenceInput(
        home_label="Flat 3, 12 Example Street", hours=series.hours, indoor_t=series.air_temp[0],
        indoor_rh=series.rh[0], surface_rh=cold.rh_pct[0].astype(np.float64),
        mould_index=history[0].astype(np.float64), daily_levels=report.daily_levels(series, inputs),
        latest=latest, generated_at=datetime(2026, 1, 22, 9, 0, tzinfo=UTC), reported_on=reported_on,
        holidays=frozenset({date(2026, 1, 26)})), damp_hours


def test_evidence_report_shows_the_measured_risk_and_awaabs_law_dates() -> None:
    evidence, damp_hours = damp_home_evidence(reported_on=date(2026, 1, 16))   # a Friday
    page = report.evidence_report(evidence)
    assert f"<th>Hours with the coldest wall at 80 % humidity or more</th><td>{damp_hours}</td>" in page
    assert damp_hours > 400
    assert len(evidence.daily_levels) == 21 and evidence.daily_levels[-1][1] == "high"
    assert page.count("<svg") == 5 and "<script" not in page
    # 10 working days from Fri 16 Jan, skipping weekends and the listed holiday on Mon 26 Jan
    assert "by Mon 02 Feb 2026" in page
    assert "by Thu 05 Feb 2026" in page and "by Sat 17 Jan 2026" in page
    assert "Water condensed on the coldest wall" in page          # the plain-words reasons
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        ElementTree.fromstring(svg)                                 # every chart is well-formed XML


def test_working_days_skip_weekends_and_holidays() -> None:
    assert report.working_days_after(date(2026, 1, 16), 10) == date(2026, 1, 30)
    assert report.working_days_after(date(2026, 1, 16), 10, frozenset({date(2026, 1, 20)})) == date(2026, 2, 2)
    assert report.working_days_after(date(2026, 1, 17), 1) == date(2026, 1, 19)


def test_without_a_report_date_the_page_states_the_general_timelines_and_escapes_text() -> None:
    evidence, _ = damp_home_evidence(reported_on=None)
    evidence = report.EvidenceInput(**{**evidence.__dict__, "home_label": "<b>Flat & co</b>"})
    page = report.evidence_report(evidence)
    assert "within 10 working days of being reported" in page
    assert "&lt;b&gt;Flat &amp; co&lt;/b&gt;" in page and "<b>Flat" not in page


def homes() -> list[HomeRisk]:
    levels = ["severe", "high", "high", "none", "low", "medium", "none", "unknown", "high"]
    areas = ["Easton"] * 6 + ["Clifton"] * 3
    return [HomeRisk(f"h{i}", area, level, float(i) / 3, i * 10)
            for i, (area, level) in enumerate(zip(areas, levels, strict=True))]


def test_officers_see_homes_ranked_worst_first() -> None:
    ranked = council.rank_homes(homes())
    assert [r.home.level for r in ranked] == ["severe", "high", "high", "high", "medium", "low", "none", "none",
                                              "unknown"]
    assert [r.home.household_id for r in ranked[1:4]] == ["h8", "h2", "h1"]   # higher mould index first
    assert [r.rank for r in ranked] == list(range(1, 10))


def test_area_statistics_withhold_small_areas_and_blur_small_counts() -> None:
    stats = {s.area: s for s in council.area_statistics(homes())}
    easton, clifton = stats["Easton"], stats["Clifton"]
    assert clifton.homes is None and clifton.by_level == {}                 # 3 homes: withheld
    assert easton.homes == 6 and easton.by_level["high"] == "fewer than 3" and easton.by_level["severe"] == \
        "fewer than 3"
    assert easton.share_high_or_severe == 0.5
    row = easton.as_row()
    published = " ".join(str(v) for v in row.values())
    assert not re.search(r"\bh\d\b", published)                            # no household ids leave
    assert set(row) >= {"area", "homes", "homes_high", "share_high_or_severe", "median_mould_index"}


def test_homes_are_placed_in_ward_polygons() -> None:
    wards = {"West": shapely.box(-2.70, 51.40, -2.60, 51.50), "East": shapely.box(-2.60, 51.40, -2.50, 51.50)}
    assert council.assign_areas([-2.65, -2.55, -3.0], [51.45, 51.45, 51.45], wards) == ["West", "East", None]
