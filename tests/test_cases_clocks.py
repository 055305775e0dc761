"""Awaab's Law clocks (rules/cases/clocks.py) against dates worked by hand, and `cityops damp deadlines`.

Bank holidays in England from GOV.UK (https://www.gov.uk/bank-holidays):
    2026  Thu 1 Jan, Fri 3 Apr (Good Friday), Mon 6 Apr (Easter Monday), Mon 4 May, Mon 25 May,
          Mon 31 Aug, Fri 25 Dec (Christmas Day), Mon 28 Dec (Boxing Day, substitute day)
    2027  Fri 1 Jan, Fri 26 Mar (Good Friday), Mon 29 Mar (Easter Monday), Mon 3 May, Mon 31 May,
          Mon 30 Aug, Mon 27 Dec (Christmas Day, substitute day), Tue 28 Dec (Boxing Day, substitute day)
Clock changes in the UK (GOV.UK, "When do the clocks change?"): 2027 forward at 01:00 GMT on Sunday
28 March, back at 02:00 BST on Sunday 31 October. The end of a day is 23:59:59.999999 London time,
so 23:59:59.999999Z in winter (GMT) and 22:59:59.999999Z in summer (BST).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityops_cli.main import main
from rules.cases import clocks
from rules.cases.clocks import LONDON, InvalidClockInput, WorkingDays, case_clocks
from rules.damp import report

ENGLAND = WorkingDays.england()
GOV_UK_2026_2027 = {
    date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 4), date(2026, 5, 25),
    date(2026, 8, 31), date(2026, 12, 25), date(2026, 12, 28),
    date(2027, 1, 1), date(2027, 3, 26), date(2027, 3, 29), date(2027, 5, 3), date(2027, 5, 31),
    date(2027, 8, 30), date(2027, 12, 27), date(2027, 12, 28),
}


def london(y: int, m: int, d: int, hour: int, minute: int) -> datetime:
    """A wall-clock time in London (GMT or BST as the day has it)."""
    return datetime(y, m, d, hour, minute, tzinfo=LONDON)


def end_gmt(y: int, m: int, d: int) -> datetime:
    """The end of a winter day in London, in UTC."""
    return datetime(y, m, d, 23, 59, 59, 999999, tzinfo=UTC)


def end_bst(y: int, m: int, d: int) -> datetime:
    """The end of a summer day in London, in UTC (an hour earlier)."""
    return datetime(y, m, d, 22, 59, 59, 999999, tzinfo=UTC)


def test_the_library_s_bank_holidays_are_gov_uk_s() -> None:
    weekdays_off = {day for day in (date(2026, 1, 1) + timedelta(n) for n in range(730))
                    if day.weekday() < 5 and not ENGLAND.is_working_day(day)}
    assert weekdays_off == GOV_UK_2026_2027     # the weekday bank holidays; 26 Dec 2026 and 25-26 Dec 2027 are weekends


# (aware, working days, due) worked by hand: day 1 is the first working day after the day of awareness
WORKING_DAY_TABLE = [
    # the issue's example. Wed 23 Dec 2026: Thu 24 = 1; Fri 25 Christmas, Sat, Sun, Mon 28 Boxing Day
    # (substitute) skipped; Tue 29 = 2, Wed 30 = 3, Thu 31 = 4; Fri 1 Jan New Year's Day skipped;
    # Mon 4 = 5, Tue 5 = 6, Wed 6 = 7, Thu 7 = 8, Fri 8 = 9, Mon 11 Jan 2027 = 10
    (london(2026, 12, 23, 10, 0), 10, end_gmt(2027, 1, 11)),
    # written summary after an investigation on Thu 24 Dec 2026: Tue 29 = 1, Wed 30 = 2, Thu 31 = 3
    (london(2026, 12, 24, 16, 0), 3, end_gmt(2026, 12, 31)),
    # safety work after an investigation on Wed 22 Dec 2027: Thu 23 = 1, Fri 24 = 2; Sat 25, Sun 26,
    # Mon 27 and Tue 28 (both substitute days) skipped; Wed 29 = 3, Thu 30 = 4, Fri 31 Dec 2027 = 5
    (london(2027, 12, 22, 11, 0), 5, end_gmt(2027, 12, 31)),
    # Easter 2027 and the change to BST. Thu 18 Mar: Fri 19 = 1, Mon 22 = 2 ... Thu 25 = 5; Good Friday
    # 26 Mar, the weekend (clocks forward on Sun 28) and Easter Monday 29 Mar skipped; Tue 30 = 6,
    # Wed 31 = 7, Thu 1 Apr = 8, Fri 2 = 9, Mon 5 Apr = 10, which ends at 23:59 BST = 22:59 UTC
    (london(2027, 3, 18, 9, 30), 10, end_bst(2027, 4, 5)),
    # the change back to GMT. Investigation concluded Fri 29 Oct 2027 15:00 BST; clocks go back on
    # Sun 31 Oct; Mon 1 Nov = 1, Tue 2 = 2, Wed 3 Nov = 3, ending 23:59 GMT
    (london(2027, 10, 29, 15, 0), 3, end_gmt(2027, 11, 3)),
    # aware Friday 4 June 2027 at 23:30 BST (22:30 UTC): Friday is the day of awareness, so Mon 7 = 1,
    # Tue 8 = 2, Wed 9 = 3, Thu 10 = 4, Fri 11 = 5, Mon 14 = 6 ... Fri 18 June = 10 (BST)
    (london(2027, 6, 4, 23, 30), 10, end_bst(2027, 6, 18)),
    # 23:30 UTC on Thursday 3 June 2027 is 00:30 BST on Friday: London's day (Friday) counts, not UTC's,
    # so the answer is the same Fri 18 June and not Thu 17 June
    (datetime(2027, 6, 3, 23, 30, tzinfo=UTC), 10, end_bst(2027, 6, 18)),
    # aware on a Saturday: Mon 7 June = 1, the same as from the Friday before
    (london(2027, 6, 5, 10, 0), 1, end_bst(2027, 6, 7)),
]


@pytest.mark.parametrize(("aware", "days", "due"), WORKING_DAY_TABLE)
def test_working_days_from_the_table(aware: datetime, days: int, due: datetime) -> None:
    assert ENGLAND.add(aware, days) == due
    assert ENGLAND.add(aware, days).tzinfo is UTC


def test_the_issue_s_example_through_the_clocks_and_in_words() -> None:
    aware = london(2026, 12, 23, 10, 0)
    (investigation, *_) = case_clocks("significant", {"aware": aware}, aware)
    assert investigation.key == "investigation" and investigation.due == end_gmt(2027, 1, 11)
    assert clocks.due_in_words(investigation.due) == "by the end of Monday 11 January 2027"
    assert clocks.local_time(investigation.due) == "2027-01-11T23:59:59+00:00"
    assert clocks.local_time(end_bst(2027, 4, 5)) == "2027-04-05T23:59:59+01:00"   # BST shows +01:00


def test_every_significant_clock_after_an_investigation_over_christmas() -> None:
    # investigation concluded Thu 24 Dec 2026 16:00; summary: 3 working days (Tue 29, Wed 30, Thu 31 Dec);
    # safety work and beginning further works: 5 (.. Thu 31 Dec, then Fri 1 Jan skipped: Mon 4 = 4,
    # Tue 5 Jan 2027 = 5); further works on site: 12 calendar weeks, 24 Dec + 84 days = Thu 18 Mar 2027 (GMT)
    found = case_clocks("significant", {"aware": london(2026, 12, 14, 9, 0),
                                        "investigated": london(2026, 12, 24, 16, 0)}, london(2026, 12, 24, 17, 0))
    assert [(c.key, c.starts_from, c.due) for c in found] == [
        # aware Mon 14 Dec: Tue 15 = 1 ... Thu 24 = 8; 25 and 28 Dec skipped; Tue 29 = 9, Wed 30 Dec = 10
        ("investigation", "aware", end_gmt(2026, 12, 30)),
        ("written_summary", "investigated", end_gmt(2026, 12, 31)),
        ("safety_work", "investigated", end_gmt(2027, 1, 5)),
        ("further_works_begin", "investigated", end_gmt(2027, 1, 5)),
        ("further_works_start", "investigated", end_gmt(2027, 3, 18)),
    ]
    assert found[0].state == "met"


def test_emergency_clocks_run_in_hours_through_a_weekend() -> None:
    # aware Friday 15 Jan 2027 17:45 GMT: investigate by Saturday 17:45; investigated Saturday 09:00:
    # made safe by Sunday 17 Jan 09:00 (24 calendar hours; weekends do not stop them)
    aware, investigated = london(2027, 1, 15, 17, 45), london(2027, 1, 16, 9, 0)
    now = london(2027, 1, 17, 10, 0)
    investigate, make_safe = case_clocks("emergency", {"aware": aware, "investigated": investigated}, now)
    assert investigate.due == datetime(2027, 1, 16, 17, 45, tzinfo=UTC) and investigate.state == "met"
    assert make_safe.due == datetime(2027, 1, 17, 9, 0, tzinfo=UTC) and make_safe.state == "overdue"
    assert clocks.due_in_words(make_safe.due) == "by 09:00 on Sunday 17 January 2027"
    assert clocks.alternative_accommodation_needed([investigate, make_safe])
    # the stricter reading: the 24 hours to make safe run from awareness too (a setting, docs/cases.md)
    _, strict = case_clocks("emergency", {"aware": aware}, now, emergency_safety_from="aware")
    assert strict.starts_from == "aware" and strict.due == datetime(2027, 1, 16, 17, 45, tzinfo=UTC)


def test_24_hours_are_elapsed_hours_across_the_clock_changes() -> None:
    # Sat 27 Mar 2027 12:00 GMT + 24 h = Sun 28 Mar 12:00 UTC, which is 13:00 BST on the wall clock
    (forward, _) = case_clocks("emergency", {"aware": london(2027, 3, 27, 12, 0)}, london(2027, 3, 27, 12, 0))
    assert forward.due == datetime(2027, 3, 28, 12, 0, tzinfo=UTC)
    assert clocks.due_in_words(forward.due) == "by 13:00 on Sunday 28 March 2027"
    # Sat 30 Oct 2027 12:00 BST (11:00 UTC) + 24 h = Sun 31 Oct 11:00 UTC = 11:00 GMT
    (back, _) = case_clocks("emergency", {"aware": london(2027, 10, 30, 12, 0)}, london(2027, 10, 30, 12, 0))
    assert back.due == datetime(2027, 10, 31, 11, 0, tzinfo=UTC)
    assert clocks.due_in_words(back.due) == "by 11:00 on Sunday 31 October 2027"


def test_every_state() -> None:
    # aware Wed 23 Dec 2026: the investigation is due at the end of Mon 11 Jan 2027 (the table above)
    aware = london(2026, 12, 23, 10, 0)
    due = end_gmt(2027, 1, 11)

    def states(now: datetime, **more: datetime) -> tuple[str, str]:
        investigation, summary, *_ = case_clocks("significant", {"aware": aware, **more}, now)
        assert investigation.due == due
        return investigation.state, summary.state

    assert states(datetime(2027, 1, 4, 12, tzinfo=UTC)) == ("on_time", "waiting")   # 7.5 days left
    assert states(due - timedelta(days=2, seconds=1)) == ("on_time", "waiting")
    assert states(due - timedelta(days=2)) == ("due_soon", "waiting")              # the 2-day default, inclusive
    assert states(due) == ("due_soon", "waiting")                                  # still in time at the last instant
    assert states(due + timedelta(microseconds=1)) == ("overdue", "waiting")
    # met in time, the summary clock now running; and met a day late
    assert states(datetime(2027, 1, 20, tzinfo=UTC), investigated=london(2027, 1, 11, 23, 0)) == \
        ("met", "overdue")                                   # summary due end of Thu 14 Jan (3 working days)
    assert states(datetime(2027, 1, 12, 10, tzinfo=UTC), investigated=london(2027, 1, 12, 9, 0)) == \
        ("met_late", "on_time")
    (made_safe,) = [c for c in case_clocks("emergency", {"made_safe": london(2027, 1, 1, 9, 0)}, aware)
                    if c.key == "make_safe"]
    assert made_safe.state == "met" and made_safe.due is None    # met with no start recorded: met, no due time


def test_open_questions_are_parameters() -> None:
    friday = london(2027, 6, 4, 23, 30)
    # counting the day of awareness as day 1 (a working Friday): Thu 17 June instead of Fri 18 June
    (counted, *_) = case_clocks("significant", {"aware": friday}, friday, first_day_counts=True)
    assert counted.due == end_bst(2027, 6, 17)
    # a Saturday is not a working day, so counting it changes nothing: Mon 7 = 1 ... Fri 18 = 10
    (saturday, *_) = case_clocks("significant", {"aware": london(2027, 6, 5, 9, 0)}, friday, first_day_counts=True)
    assert saturday.due == end_bst(2027, 6, 18)
    # an office that closes at 17:00: the day ends then (17:00 BST = 16:00 UTC)
    office = WorkingDays(ENGLAND.holidays, day_ends=datetime(2000, 1, 1, 17).time())
    assert office.add(friday, 10) == datetime(2027, 6, 18, 16, 0, tzinfo=UTC)
    assert clocks.due_in_words(office.add(friday, 10), office) == "by the end of Friday 18 June 2027"
    # a closed day of the council's own (a local holiday) on top of England's: Mon 7 June skipped
    assert ENGLAND.also_closed({date(2027, 6, 7)}).add(friday, 1) == end_bst(2027, 6, 8)
    # clocks the investigation found do not apply are left out
    keys = [c.key for c in case_clocks("significant", {"aware": friday}, friday,
                                       not_needed={"further_works_begin", "further_works_start"})]
    assert keys == ["investigation", "written_summary", "safety_work"]


def test_bad_input_is_refused_with_the_field() -> None:
    now = london(2027, 1, 4, 9, 0)
    with pytest.raises(InvalidClockInput) as naive:
        case_clocks("significant", {"aware": datetime(2027, 1, 4, 9, 0)}, now)
    assert naive.value.field == "aware"
    with pytest.raises(InvalidClockInput) as unknown:
        case_clocks("significant", {"reported": now}, now)
    assert unknown.value.field == "milestones"
    with pytest.raises(InvalidClockInput) as category:
        case_clocks("urgent", {}, now)  # type: ignore[arg-type]
    assert category.value.field == "category"


@given(st.dates(date(2026, 1, 1), date(2027, 12, 31)), st.integers(0, 40))
def test_the_due_day_is_a_working_day_exactly_that_many_working_days_on(start: date, days: int) -> None:
    due = ENGLAND.add(datetime.combine(start, datetime.min.time(), LONDON), days).astimezone(LONDON).date()
    between = [start + timedelta(n) for n in range(1, (due - start).days + 1)]
    assert sum(ENGLAND.is_working_day(day) for day in between) == days
    assert (days == 0 and due == start) or ENGLAND.is_working_day(due)


def test_the_evidence_page_counts_england_s_bank_holidays_with_the_same_code() -> None:
    # the issue's example again, through rules/damp/report.py's Awaab's Law table
    (_, investigate), (_, summary) = report.awaab_deadlines(date(2026, 12, 23))[1:]
    assert "by Mon 11 Jan 2027" in investigate
    assert "by Thu 14 Jan 2027" in summary        # Tue 12 = 1, Wed 13 = 2, Thu 14 = 3


def test_the_command_prints_every_due_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["damp", "deadlines", "--aware", "2026-12-23T10:00", "--category", "significant"]) == 0
    out = capsys.readouterr().out
    assert ("Investigate the damp and mould: by the end of Monday 11 January 2027 (2027-01-11T23:59:59+00:00)"
            in out)
    assert "SI 2025/1042" in out and "alternative accommodation" in out
    # with the investigation (Thu 24 Dec 2026 16:00) every clock has a due time; the table's dates again
    assert main(["damp", "deadlines", "--aware", "2026-12-23T10:00", "--category", "significant",
                 "--investigated", "2026-12-24T16:00", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {c["key"]: c["due_in_words"] for c in doc["clocks"]} == {
        "investigation": "by the end of Monday 11 January 2027",
        "written_summary": "by the end of Thursday 31 December 2026",
        "safety_work": "by the end of Tuesday 5 January 2027",
        "further_works_begin": "by the end of Tuesday 5 January 2027",
        "further_works_start": "by the end of Thursday 18 March 2027",
    }
    assert doc["clocks"][0]["due"] == "2027-01-11T23:59:59.999999+00:00"
    # an emergency in summer, with an offset: London time with BST's +01:00
    assert main(["damp", "deadlines", "--aware", "2027-06-04T22:30Z", "--category", "emergency", "--json"]) == 0
    (investigate, make_safe) = json.loads(capsys.readouterr().out)["clocks"]
    assert investigate["due_local"] == "2027-06-05T23:30:00+01:00" and make_safe["due"] is None


def test_the_command_refuses_a_bad_category_or_time(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as bad:
        main(["damp", "deadlines", "--aware", "2026-12-23", "--category", "urgent"])
    assert bad.value.code == 2
    with pytest.raises(SystemExit) as worse:
        main(["damp", "deadlines", "--aware", "23/12/2026", "--category", "significant"])
    assert worse.value.code == 2 and "is not an ISO 8601 time" in capsys.readouterr().err
