"""Issue 18, part 5: the open damp statistics re-identify no home.

The attacker is code: it reads everything the open endpoints publish (JSON and CSV, every
area, every period), knows the disclosure rules (rules.disclosure, published with each
snapshot) and who lives in each area and when each home was installed, and tries to
recover any home's level: an exact small or zero cell (by subtracting published cells from
the total), an area whose homes all share a level, and differencing two snapshots around
an installation. A row's possible worlds are every count vector that the rules would
publish as exactly that row; a deduction holds only if it holds in all of them.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityops.errors import StorageError
from cityops.settings import Settings, StorageSettings
from cityops.storage import Database, migrate
from ops_api.app import create_app
from pipelines import cli
from pipelines.open_data.pipeline import CATEGORIES, publish_snapshots, release_row
from rules.disclosure import Member, Policy, Status, protect, release_members, round_to, snapshot
from tests.api_helpers import serving
from tests.conftest import scratch_database

POLICY = Policy()
SMALL = 10   # the attacker's own bar: a cell known exactly under 10 (ONS) is a disclosure
Counts = tuple[int, ...]


# --- the attacker -------------------------------------------------------------------------------

def publishes(area: str, counts: Counts, policy: Policy) -> dict[str, Any]:
    return release_row(protect(area, dict(zip(CATEGORIES, counts, strict=True)), policy))


def _inverse_rounding(value: int, policy: Policy) -> list[int]:
    return [v for v in range(max(0, value - policy.base), value + policy.base + 1) if round_to(v, policy.base) == value]


def worlds(row: dict[str, Any], policy: Policy, last: int | None = None) -> Iterator[Counts]:
    """Every count vector (CATEGORIES order) the rules publish as exactly `row`, lazily; the
    category `last` varies fastest (so a world that differs in it comes early)."""
    if row["status"] == Status.WITHHELD:
        totals = list(range(policy.min_area))
    else:
        totals = [n for n in _inverse_rounding(row["homes"], policy) if n >= policy.min_area]
    order = [i for i in range(len(CATEGORIES)) if i != last] + ([last] if last is not None else [])
    for n in totals:
        boxes = [_inverse_rounding(row[f"homes_{CATEGORIES[i]}"], policy)
                 if row[f"homes_{CATEGORIES[i]}"] is not None else list(range(n + 1)) for i in order]
        for combo in _fill(boxes, n):
            counts = [0] * len(CATEGORIES)
            for i, v in zip(order, combo, strict=True):
                counts[i] = v
            if publishes(row["area"], tuple(counts), policy) == row:
                yield tuple(counts)


def _fill(boxes: list[list[int]], total: int) -> Iterator[list[int]]:
    if len(boxes) == 1:
        if total in boxes[0]:
            yield [total]
        return
    rest_min, rest_max = sum(min(b) for b in boxes[1:]), sum(max(b) for b in boxes[1:])
    for v in boxes[0]:
        if rest_min <= total - v <= rest_max:
            for tail in _fill(boxes[1:], total - v):
                yield [v, *tail]


def snapshot_leaks(row: dict[str, Any], policy: Policy) -> list[str]:
    """What one published row gives away: a cell known exactly under SMALL (zero
    included), or every home of the area at one level."""
    first = next(worlds(row, policy), None)
    assert first is not None, f"no world publishes {row}"
    found = []
    for i, level in enumerate(CATEGORIES):
        if first[i] < SMALL and all(w[i] == first[i] for w in itertools.islice(
                worlds(row, policy, last=i), 200_000)):
            found.append(f"{row['area']}: exactly {first[i]} {level}")
    if sum(first) and not any(sum(1 for v in w if v) >= 2 for w in itertools.islice(worlds(row, policy), 200_000)):
        found.append(f"{row['area']}: every home at one level")
    return found


def differencing_leaks(before: dict[str, Any], after: dict[str, Any], joined: int, policy: Policy) -> bool:
    """Whether `joined` homes added between two snapshots (nothing else changing: the
    attacker's best case) must all be at one level: then each one's level is known."""
    possible: set[int] = set()
    for counts in itertools.islice(worlds(before, policy), 20_000):
        for delta in _compositions(joined, len(CATEGORIES)):
            grown = tuple(c + d for c, d in zip(counts, delta, strict=True))
            if publishes(after["area"], grown, policy) == after:
                possible |= {i for i, d in enumerate(delta) if d}
                if len(possible) >= 2:
                    return False
    return len(possible) == 1


def _compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    for cuts in itertools.combinations(range(total + parts - 1), parts - 1):
        edges = (-1, *cuts, total + parts - 1)
        yield tuple(b - a - 1 for a, b in itertools.pairwise(edges))


# --- the rules, as properties -------------------------------------------------------------------

counts_st = st.lists(st.integers(0, 40), min_size=len(CATEGORIES), max_size=len(CATEGORIES)).map(tuple)


@given(counts_st)
def test_no_published_number_is_small_unrounded_or_far_from_the_truth(counts: Counts) -> None:
    release = protect("a", dict(zip(CATEGORIES, counts, strict=True)), POLICY)
    n = sum(counts)
    if n < POLICY.min_area:
        assert release.status is Status.WITHHELD and release.total is None
    else:
        assert release.total is not None and release.total % POLICY.base == 0 and abs(release.total - n) <= 2
    for level, value in release.cells.items():
        true = counts[CATEGORIES.index(level)]
        if value is not None:
            assert true >= POLICY.min_cell and value % POLICY.base == 0 and abs(value - true) <= 2


@given(counts_st)
def test_suppressed_cells_hide_together_and_no_published_breakdown_is_dominated(counts: Counts) -> None:
    release = protect("a", dict(zip(CATEGORIES, counts, strict=True)), POLICY)
    if release.status is not Status.PUBLISHED:
        assert all(v is None for v in release.cells.values())
        return
    hidden = [counts[CATEGORIES.index(c)] for c, v in release.cells.items() if v is None]
    assert not hidden or (len(hidden) >= 2 and sum(hidden) >= POLICY.min_cell)
    assert max(counts) <= POLICY.dominance * sum(counts)
    assert any(v is not None for v in release.cells.values())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=len(CATEGORIES), max_size=len(CATEGORIES)).map(tuple))
def test_suppression_survives_subtraction(counts: Counts) -> None:
    row = publishes("a", counts, POLICY)
    assert snapshot_leaks(row, POLICY) == []


@settings(max_examples=60, deadline=None)
@given(counts_st, st.sampled_from(CATEGORIES), st.booleans())
def test_one_home_joining_or_leaving_changes_no_published_number(counts: Counts, level: str, leaves: bool) -> None:
    homes = [Member(f"h{i}-{c}", "a", c) for c, n in zip(CATEGORIES, counts, strict=True) for i in range(n)]
    releases, counted = snapshot(homes, None, CATEGORIES, POLICY)
    if leaves and homes:
        changed = homes[:-1]
        known = {m.member_id: m for m in homes}
    else:
        changed, known = [*homes, Member("new", "a", level)], {}
    again, _ = snapshot(changed, counted, CATEGORIES, POLICY, known)
    assert again == releases


@given(st.frozensets(st.integers(0, 30)), st.frozensets(st.integers(0, 30)))
def test_members_change_only_in_batches(before: frozenset[int], now: frozenset[int]) -> None:
    previous = frozenset(map(str, before))
    counted = release_members(previous, frozenset(map(str, now)), POLICY)
    assert counted == previous or len(counted ^ previous) >= POLICY.min_cell


def test_the_issues_five_homes_and_one_level_area_publish_nothing_to_subtract() -> None:
    five = publishes("five", (4, 0, 0, 0, 1, 0), POLICY)
    assert five["status"] == "withheld" and all(v is None for k, v in five.items() if k not in ("area", "status"))
    one = publishes("one", (14, 0, 0, 0, 0, 0), POLICY)
    assert one["status"] == "breakdown suppressed" and one["homes"] == 15 and one["share_high_or_severe"] is None
    assert snapshot_leaks(five, POLICY) == [] and snapshot_leaks(one, POLICY) == []


def test_the_attacker_is_not_blind() -> None:
    """With exact counts (no rounding, cells of one allowed) it finds the exact small cells and
    the one installed home's level."""
    exact = Policy(min_area=10, min_cell=1, base=1, dominance=0.9)
    leaks = snapshot_leaks(publishes("a", (10, 4, 1, 1, 1, 1), exact), exact)
    assert "a: exactly 1 medium" in leaks and "a: exactly 1 severe" in leaks
    assert differencing_leaks(publishes("a", (20, 20, 20, 10, 10, 10), exact),
                              publishes("a", (20, 20, 20, 10, 11, 10), exact), 1, exact)
    assert not differencing_leaks(publishes("a", (20, 20, 20, 10, 10, 10), POLICY),
                                  publishes("a", (20, 20, 20, 10, 11, 10), POLICY), 1, POLICY)


# --- the real API over HTTP, real PostgreSQL ------------------------------------------------------

W1 = datetime(2026, 1, 5, tzinfo=UTC)   # a Monday: weeks W1..W4
WEEKS = [W1 + timedelta(days=7 * k) for k in range(4)]
# Large ward: 60 homes; the one-level and five-home wards; one zero-heavy ward
WARDS = {
    "Large": {"none": 25, "low": 15, "medium": 10, "high": 6, "severe": 2, "unknown": 2},
    "One Level": {"none": 14},
    "Five Homes": {"none": 4, "severe": 1},
    "Zeros": {"none": 11, "low": 11, "medium": 11},
}
INSTALLED = "hh-x-installed"                      # one home installed in week 2 (severe)
COHORT = [(f"hh-cohort-{i}", "none" if i < 5 else "high") for i in range(10)]   # ten installed in week 3


@dataclass
class Town:
    db: Database
    url: str


async def _assess(db: Database, household: str, area: str, level: str, at: datetime) -> None:
    await db.execute("INSERT INTO damp_home_settings (household_id, area) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                     household, area)
    await db.execute(
        "INSERT INTO damp_assessments (device_id, data_until, household_id, level, mould_index, damp_hours_7d, "
        "condensation_hours_7d, reasons, changes, faults, metrics) VALUES ($1, $2, $3, $4, 1.0, 10, 0, "
        "'[]', '[]', '[]', '{}')", f"frog-{household}", at, household, level)


@pytest.fixture(scope="module")
async def town(postgres_admin_url: str) -> AsyncIterator[Town]:
    async with scratch_database(postgres_admin_url) as url, Database.connect(url) as db:
        await migrate(db, StorageSettings())
        homes = [(f"hh-{ward[:3].lower()}-{level}-{i}", ward, level)
                 for ward, levels in WARDS.items() for level, n in levels.items() for i in range(n)]
        for household, ward, level in homes:
            for at in [W1 - timedelta(days=2), *(w + timedelta(days=3) for w in WEEKS)]:
                await _assess(db, household, ward, level, at)
        for at in (WEEKS[1] + timedelta(days=2), WEEKS[2] + timedelta(days=3), WEEKS[3] + timedelta(days=3)):
            await _assess(db, INSTALLED, "Large", "severe", at)
        for household, level in COHORT:
            for at in (WEEKS[2] + timedelta(days=2), WEEKS[3] + timedelta(days=3)):
                await _assess(db, household, "Large", level, at)
        for week in WEEKS:   # the rules service, once each week has ended
            await publish_snapshots(db, now=week + timedelta(days=7, hours=1))
        yield Town(db, url)


@pytest.fixture(scope="module")
async def base_url(town: Town) -> AsyncIterator[str]:
    async with serving(create_app(Settings(database_url=town.url), db=town.db)) as url:
        yield url


async def everything_published(base_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every period's rows, from the JSON and the CSV (which must say the same)."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        index = (await http.get("/open/damp-areas.json")).json()
        out = {}
        for period in index["periods"]:
            body = (await http.get("/open/damp-areas.json", params={"period": period})).json()
            table = list(csv.DictReader(io.StringIO(
                (await http.get("/open/damp-areas.csv", params={"period": period})).text)))
            assert [{k: "" if v is None else str(v) for k, v in r.items()} for r in body["areas"]] == table
            out[period] = body["areas"]
        return out


def _by_area(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["area"]: r for r in rows}


async def test_the_attacker_recovers_no_homes_level(base_url: str) -> None:
    published = await everything_published(base_url)
    periods = sorted(published)
    assert periods == [w.date().isoformat() for w in WEEKS]
    leaks = [leak for rows in published.values() for row in rows for leak in snapshot_leaks(row, POLICY)]
    assert leaks == []
    # differencing consecutive snapshots around the installations. The attacker knows who
    # was installed when and the batch rule, so who each snapshot counted:
    # week 2 counts not X (installed during it), week 3 not X either (one change is not a
    # batch), week 4 counts X and the cohort of ten (eleven joined)
    large = [_by_area(published[p])["Large"] for p in periods]
    assert large[0] == large[1] == large[2]
    for before, after in itertools.pairwise(large):
        assert not differencing_leaks(before, after, 1, POLICY)          # naive: X alone joined
    assert not differencing_leaks(large[2], large[3], 1 + len(COHORT), POLICY)


async def test_the_issues_attacks_find_nothing_to_subtract(base_url: str) -> None:
    latest = _by_area((await everything_published(base_url))[WEEKS[-1].date().isoformat()])
    five, one, zeros = latest["Five Homes"], latest["One Level"], latest["Zeros"]
    assert five["status"] == "withheld" and five["homes"] is None and five["homes_severe"] is None
    assert one["status"] == "breakdown suppressed" and one["homes"] == 15
    assert one["share_high_or_severe"] is None and one["homes_none"] is None
    assert zeros["status"] == "published" and zeros["homes_high"] is None and zeros["homes_severe"] is None
    assert "median_mould_index" not in zeros


async def test_statistics_stay_useful(base_url: str) -> None:
    published = await everything_published(base_url)
    first = _by_area(published[WEEKS[0].date().isoformat()])["Large"]
    assert (first["homes"], first["homes_none"], first["homes_low"], first["homes_medium"]) == (60, 25, 15, 10)
    last = _by_area(published[WEEKS[-1].date().isoformat()])["Large"]
    assert last["status"] == "published" and last["homes"] == 70 and last["homes_high"] == 10


async def test_snapshots_are_fixed_not_recomputed_live(base_url: str, town: Town) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        before = (await http.get("/open/damp-areas.json")).json()
        # a home installed now, its level assessed: the published week does not move
        await _assess(town.db, "hh-new-now", "Large", "severe", WEEKS[-1] + timedelta(days=6))
        assert await publish_snapshots(town.db, now=WEEKS[-1] + timedelta(days=7, hours=2)) == []
        assert (await http.get("/open/damp-areas.json")).json() == before
        assert before["period"]["start"] == WEEKS[-1].isoformat()
        assert before["policy"] == POLICY.as_dict()
        missing = await http.get("/open/damp-areas.json", params={"period": "2025-01-06"})
        assert missing.status_code == 404 and "hint" in missing.json()
    with pytest.raises(StorageError, match="UPDATE refused"):
        await town.db.execute("UPDATE open_damp_areas SET release = '{}' WHERE area = 'Large'")


async def test_no_household_id_or_readings_in_any_format(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        for path in ("/open/damp-areas.json", "/open/damp-areas.csv"):
            text = (await http.get(path)).text
            assert "hh-" not in text and "frog-" not in text and "mould" not in text


async def test_rules_areas_prints_the_latest_published_week(town: Town, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["rules", "areas"])
    assert await args.handler(args, Settings(database_url=town.url)) == 0  # type: ignore[arg-type]
    printed = capsys.readouterr()
    table = {r["area"]: r for r in csv.DictReader(io.StringIO(printed.out))}
    assert table["Large"]["homes"] == "70" and table["Five Homes"]["homes"] == ""
    assert f"week of {WEEKS[-1].date()}" in printed.err and "hh-" not in printed.out
