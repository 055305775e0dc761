"""Alerts on Awaab's Law clocks: the pure rule (alerts/case_clocks.py) on hand-worked dates,
who is told (a landlord officer only of their own homes' cases), and the runner over the real
tables: an overdue investigation opens an alert that escalates, recording the investigation
clears it, and a closed case or a sensors' suggestion raises nothing.

The dates are worked by hand with England's bank holidays, as docs/cases.md ("Working days
and bank holidays") does: aware Wednesday 23 December 2026, the awareness day does not count;
Thursday 24 is working day 1, Friday 25 (Christmas Day), the weekend and Monday 28 (Boxing
Day, substitute) are skipped, Tuesday 29 to Thursday 31 are days 2-4, Friday 1 January is
skipped, Monday 4 to Monday 11 January 2027 are days 5-10: the investigation (10 working
days, SI 2025/1042 reg. 4) is due by the end of Monday 11 January 2027, 23:59:59.999999 GMT.
"Due soon" is 2 days or less before the due time (case_clocks' default, docs/cases.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.case_clocks import CaseFact, case_signals
from alerts.errors import InvalidPreference
from alerts.model import Alert, Signal
from alerts.preferences import parse_subscription, wants
from alerts.runner import AlertsRunner
from cases import lifecycle, store
from cityops.settings import AlertsSettings
from cityops.storage import Database

AWARE = datetime(2026, 12, 23, 10, 0, tzinfo=UTC)                         # Wednesday 23 December 2026
INVESTIGATION_DUE = datetime(2027, 1, 11, 23, 59, 59, 999999, tzinfo=UTC)  # end of Monday 11 January (GMT)
DAY_11 = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)     # Tuesday 12 January: the 11th working day, 9 h past due


def _case(**kw: object) -> CaseFact:
    fields: dict = {"case_id": 7, "household_id": "h-7", "category": "significant", "aware_at": AWARE,
                    "landlord_id": "riverside", "landlord_name": "Riverside Homes", "home_label": "4 Elm Row"}
    return CaseFact(**{**fields, **kw})


def _by_rule(now: datetime, case: CaseFact) -> dict[str, Signal]:
    return {s.rule: s for s in case_signals([case], now)}


# --- the rule, pure ---------------------------------------------------------------------------

def test_nothing_fires_while_the_investigation_is_more_than_two_days_off() -> None:
    # Friday 8 January 12:00: 3 days 12 h before the end of Monday 11 January
    signals = _by_rule(datetime(2027, 1, 8, 12, 0, tzinfo=UTC), _case())
    assert {r: s.status for r, s in signals.items()} == {"case_overdue": "clear", "case_due_soon": "clear"}


def test_the_investigation_is_due_soon_two_days_before_its_end() -> None:
    # Sunday 10 January 12:00: 1 day 12 h left, inside the 2 days
    signals = _by_rule(datetime(2027, 1, 10, 12, 0, tzinfo=UTC), _case())
    soon = signals["case_due_soon"]
    assert soon.status == "firing" and soon.severity == "warning"
    assert soon.cause == "case_due_soon:h-7:7"
    assert [m.id for m in soon.members] == ["investigation"]
    assert soon.members[0].at == INVESTIGATION_DUE
    assert soon.title == "Damp case 7 at 4 Elm Row (h-7) (Riverside Homes): Investigate the damp and mould is due soon"
    assert "- Investigate the damp and mould: due by the end of Monday 11 January 2027" in soon.detail
    assert soon.landlord_id == "riverside" and soon.household_id is None
    assert signals["case_overdue"].status == "clear"


def test_an_investigation_not_done_by_the_tenth_working_day_is_overdue() -> None:
    signals = _by_rule(DAY_11, _case())
    late = signals["case_overdue"]
    assert late.status == "firing" and late.severity == "critical"
    assert late.cause == "case_overdue:h-7:7"
    assert "was due by the end of Monday 11 January 2027, overdue by 9 h" in late.detail
    assert late.members[0].value == 9.0          # hours past due: 09:00 less 23:59:59.999999 the day before
    assert signals["case_due_soon"].status == "clear"   # the same clock is not due soon any more


def test_an_investigated_case_runs_the_clocks_that_follow() -> None:
    # investigated Monday 4 January 2027 (Sunday 10 January 12:00 is 60 h past the summary's due
    # time, "2 days 12 h"): the written summary (3 working days, reg. 6) is due by
    # the end of Thursday 7 January; the safety work and the preventative work's beginning
    # (5 working days, regs. 7 and 8) by the end of Monday 11 January
    case = _case(milestones={"investigated": datetime(2027, 1, 4, 10, 0, tzinfo=UTC)})
    signals = _by_rule(datetime(2027, 1, 10, 12, 0, tzinfo=UTC), case)
    assert [m.id for m in signals["case_overdue"].members] == ["written_summary"]
    assert "was due by the end of Thursday 7 January 2027, overdue by 2 days 12 h" in signals["case_overdue"].detail
    assert [m.id for m in signals["case_due_soon"].members] == ["safety_work", "further_works_begin"]
    assert signals["case_due_soon"].title.endswith(": 2 Awaab's Law deadlines are due soon")
    # the summary sent (late) meets its clock: nothing overdue any more
    sent = _case(milestones={"investigated": datetime(2027, 1, 4, 10, 0, tzinfo=UTC),
                             "summary_sent": datetime(2027, 1, 8, 9, 0, tzinfo=UTC)})
    assert _by_rule(datetime(2027, 1, 10, 12, 0, tzinfo=UTC), sent)["case_overdue"].status == "clear"


def test_an_emergency_is_due_soon_from_the_start_with_its_hour_in_words() -> None:
    # docs/cases.md: aware 12:00 GMT on Saturday 27 March 2027, the 24 hours end at 13:00 BST on Sunday
    case = _case(category="emergency", aware_at=datetime(2027, 3, 27, 12, 0, tzinfo=UTC))
    soon = _by_rule(datetime(2027, 3, 27, 13, 0, tzinfo=UTC), case)["case_due_soon"]
    assert soon.status == "firing"
    assert "due by 13:00 on Sunday 28 March 2027" in soon.detail


def test_a_landlord_officer_hears_only_of_their_own_homes() -> None:
    alert = Alert(1, "case_overdue", "case_overdue:h-7:7", "critical", "open", "t", "d", DAY_11, DAY_11,
                  landlord_id="riverside")
    theirs = parse_subscription({"subscription_id": 1, "user_id": "u1", "role": "landlord", "channel": "feed",
                                 "landlord_id": "riverside"})
    other = parse_subscription({"subscription_id": 2, "user_id": "u2", "role": "landlord", "channel": "feed",
                                "landlord_id": "ashbury"})
    operator = parse_subscription({"subscription_id": 3, "user_id": "u3", "role": "operator", "channel": "feed"})
    assert wants(theirs, alert, "opened") and wants(operator, alert, "opened")
    assert not wants(other, alert, "opened")
    # a landlord officer's subscription without its landlord cannot work (the runner skips it)
    with pytest.raises(InvalidPreference) as caught:
        parse_subscription({"subscription_id": 4, "user_id": "u4", "role": "landlord", "channel": "feed"})
    assert caught.value.field == "landlord_id"


# --- the runner, against the real database ----------------------------------------------------

class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


async def _home(db: Database, household: str, landlord: str | None) -> None:
    if landlord is not None and not await store.landlord_exists(db, landlord):
        await lifecycle.add_landlord(db, landlord, f"Homes of {landlord}", "housing_association", True)
    await lifecycle.put_home(db, household, landlord, f"{household} Mill Lane", True, AWARE)


async def _feed(db: Database, user: str, role: str, landlord: str | None = None) -> None:
    await db.execute("INSERT INTO alert_subscriptions (user_id, role, channel, landlord_id) "
                     "VALUES ($1, $2, 'feed', $3)", user, role, landlord)


async def _alerts(db: Database) -> dict[str, dict]:
    rows = await db.fetch("SELECT * FROM alerts ORDER BY alert_id")
    return {r["cause"]: dict(r) for r in rows}


async def test_an_overdue_investigation_alerts_escalates_and_clears_when_recorded(fresh_db: Database) -> None:
    db = fresh_db
    await _home(db, "h-late", "riverside")
    await _home(db, "h-closed", "ashbury")
    await _home(db, "h-suggested", "ashbury")
    await _feed(db, "olu", "operator")
    await _feed(db, "rita", "landlord", "riverside")
    await _feed(db, "ash", "landlord", "ashbury")
    late = await lifecycle.open_case(db, "h-late", "rita", DAY_11, category="significant", reason="mould",
                                     aware_at=AWARE)
    closed = await lifecycle.open_case(db, "h-closed", "ash", DAY_11, category="significant", reason="mould",
                                       aware_at=AWARE)
    await lifecycle.close_case(db, closed, "ash", DAY_11, "tenant moved out")
    async with db.transaction() as conn:   # what cases.lifecycle.suggest_from_sensors writes
        await store.insert_case(conn, {"household_id": "h-suggested", "state": "suggested", "created_at": AWARE,
                                       "opened_by": "sensor", "suggestion": "{}"})
    settings = AlertsSettings()   # escalate after 30 min, clear hold 30 min (docs/alerts.md)

    # day 11, no investigation: one overdue alert, for the operator and Riverside's officer
    await AlertsRunner(db, settings, clock=Clock(DAY_11)).cycle()
    alerts = await _alerts(db)
    assert list(alerts) == [f"case_overdue:h-late:{late}"]
    alert = alerts[f"case_overdue:h-late:{late}"]
    assert (alert["state"], alert["severity"], alert["landlord_id"]) == ("open", "critical", "riverside")
    assert "Investigate the damp and mould" in alert["title"]
    told = await db.fetch("SELECT DISTINCT user_id FROM alert_outbox WHERE alert_id = $1 ORDER BY user_id",
                          alert["alert_id"])
    assert [r["user_id"] for r in told] == ["olu", "rita"]

    # nobody acknowledges it: 30 minutes on it goes up a level
    await AlertsRunner(db, settings, clock=Clock(DAY_11 + timedelta(minutes=31))).cycle()
    assert (await _alerts(db))[alert["cause"]]["escalation_level"] == 1

    # the investigation recorded: the clock is met, the alert clears and resolves after the hold
    recorded = DAY_11 + timedelta(hours=1)
    await lifecycle.record_step(db, late, "rita", recorded, "investigation", {"findings": "condensation"})
    await AlertsRunner(db, settings, clock=Clock(recorded)).cycle()
    assert (await _alerts(db))[alert["cause"]]["clear_since"] == recorded
    await AlertsRunner(db, settings, clock=Clock(recorded + timedelta(minutes=30))).cycle()
    after = await _alerts(db)
    assert after[alert["cause"]]["state"] == "resolved"
    assert list(after) == [alert["cause"]]   # nothing for the closed case, nor the suggestion, nor the new clocks
