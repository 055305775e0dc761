"""The diary: humidity spikes linked to logged activities and times of day, turned into advice."""

from datetime import UTC, datetime

import numpy as np
import pytest

from rules.damp import diary
from rules.damp.diary import Activity, DiaryEntry
from rules.errors import InvalidDiaryEntry

DAYS = 7
START = np.datetime64("2026-01-05T00:00", "m")


def home_with_habits() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[DiaryEntry]]:
    """A week of 5-minute data: logged showers at 07:00, logged cooking at 18:00 on 3 days, an
    unlogged rise at 22:00 every night, windows opened at 08:00, heating off at 23:00 on day 2."""
    times = START + np.arange(DAYS * 288) * diary.SAMPLE
    minute_of_day = (times - times.astype("datetime64[D]")).astype(int)
    rh = np.full(times.size, 55.0)
    temp = np.full(times.size, 19.0)
    entries: list[DiaryEntry] = []
    for day in range(DAYS):
        base = day * 288
        rh[base + 84: base + 90] += 18            # 07:00-07:30 shower
        rh[base + 96: base + 103] -= 6            # 08:00-08:35 windows open
        rh[base + 264: base + 268] += 10          # 22:00-22:20 nobody logged this
        entries.append(DiaryEntry(times[base + 83], Activity.SHOWER, 10))
        entries.append(DiaryEntry(times[base + 96], Activity.WINDOWS_OPENED))
        if day in (1, 3, 5):
            rh[base + 216: base + 222] += 9       # 18:00-18:30 cooking
            entries.append(DiaryEntry(times[base + 214], Activity.COOKING))
    entries.append(DiaryEntry(times[2 * 288 + 276], Activity.HEATING_OFF))
    temp[2 * 288 + 277: 3 * 288 + 72] = 14.5      # the home cools overnight
    assert minute_of_day[84] == 7 * 60
    return times, temp, rh, entries


def test_spikes_are_linked_to_the_activities_logged_before_them() -> None:
    times, temp, rh, entries = home_with_habits()
    result = diary.analyse(times, temp, rh, entries)
    kinds = [s.explained_by for s in result.spikes]
    assert kinds.count(Activity.SHOWER) == DAYS and kinds.count(Activity.COOKING) == 3
    assert kinds.count(None) == DAYS                          # the 22:00 rises
    assert result.unexplained_by_hour[22] == DAYS and result.unexplained_by_hour.sum() == DAYS
    shower = next(s for s in result.spikes if s.explained_by == Activity.SHOWER)
    assert shower.rise_pct == pytest.approx(18.0) and shower.peak_rh == pytest.approx(73.0)


def test_advice_follows_what_the_diary_shows() -> None:
    times, temp, rh, entries = home_with_habits()
    advice = " ".join(diary.analyse(times, temp, rh, entries).advice)
    assert "Showers raised the humidity by about 18 points (7 times): run the extractor fan" in advice
    assert "20 minutes" in advice
    assert "Cooking raised the humidity by about 9 points (3 times)" in advice
    assert "Opening the windows brought the humidity down by about 6 points" in advice
    assert "cooled to about 14 °C: keeping the heating on low" in advice
    assert "7 rises in humidity are not in the diary, most often between 21:00 and 23:00" in advice or \
        "most often between 22:00 and 00:00" in advice
    assert "Drying clothes" not in advice                     # nobody logged any


def test_a_quiet_home_gets_no_advice() -> None:
    times = START + np.arange(288) * diary.SAMPLE
    result = diary.analyse(times, np.full(288, 20.0), np.full(288, 50.0), [])
    assert result.spikes == [] and result.advice == []


def test_bad_entries_are_refused() -> None:
    with pytest.raises(InvalidDiaryEntry, match="unknown activity 'hoovering'"):
        DiaryEntry(START, "hoovering")  # type: ignore[arg-type]
    with pytest.raises(InvalidDiaryEntry, match="not a time"):
        DiaryEntry("yesterday-ish", Activity.SHOWER)  # type: ignore[arg-type]
    with pytest.raises(InvalidDiaryEntry, match="minutes must be positive"):
        DiaryEntry(START, Activity.SHOWER, 0)
    aware = DiaryEntry(datetime(2026, 1, 5, 8, 30, tzinfo=UTC), Activity.HEATING_ON)  # type: ignore[arg-type]
    assert aware.at == np.datetime64("2026-01-05T08:30")
