"""`cityops bench lorawan` at a tiny size: both phases store exactly what was published."""

from __future__ import annotations

import argparse
import json

import pytest

from benchmarks import lorawan as bench
from benchmarks.lorawan_publisher import is_duplicated
from cityops.embedded.broker import EmbeddedBroker
from cityops.settings import Settings
from cityops.storage import Database


def test_duplicates_are_spread_and_never_the_last_uplink() -> None:
    # the bench's own rule (benchmarks/lorawan_publisher.py): every 50th from the 25th, never the last,
    # so the last uplink stored means every duplicate before it has been judged
    assert [n for n in range(200) if is_duplicated(n, 200, 50)] == [25, 75, 125, 175]
    assert not is_duplicated(1, 2, 2)
    assert not any(is_duplicated(n, 200, 0) for n in range(200))


async def test_bench_lorawan_stores_every_message_once_in_both_phases(
        database_url: str, db: Database, broker: EmbeddedBroker, capsys: pytest.CaptureFixture[str]) -> None:
    devices_before = await db.fetchval("SELECT count(*) FROM devices")
    parser = argparse.ArgumentParser()
    bench.register_bench(parser.add_subparsers())
    args = parser.parse_args(["lorawan", "--devices", "20", "--messages", "200", "--rounds", "2", "--broker",
                              broker.url, "--json"])

    assert await args.handler(args, Settings(database_url=database_url)) == 0  # type: ignore[arg-type]

    report = json.loads(capsys.readouterr().out)
    # the brief (issue 22's benchmark): rows stored equal rows expected in both phases, duplicates stored once
    for phase in ("native", "lorawan"):
        assert report[phase]["stored"] == report[phase]["expected"] == 200
        assert report[phase]["distinct"] == 200
        assert report[phase]["dead_letters"] == 0
        assert report[phase]["per_s"] > 0
    assert report["native"]["published"] == 200
    assert report["duplicates_published"] == 4 and report["lorawan"]["published"] == 204
    assert report["ratio"] == pytest.approx(report["lorawan"]["per_s"] / report["native"]["per_s"])
    assert report["goal"] == 0.8 and report["ok"] is True
    assert report["rounds"] == 2 and len(report["all_rounds"]) == 2  # each round's rows cleared after it
    assert all(r[phase]["stored"] == 200 for r in report["all_rounds"] for phase in ("native", "lorawan"))
    # the bench removes what it registered
    assert await db.fetchval("SELECT count(*) FROM devices") == devices_before


def test_a_phase_fails_when_a_row_is_missing_or_stored_twice() -> None:
    # the brief: the command exits 1 unless stored == expected, with duplicates stored once
    def phase(stored: int, distinct: int) -> bench.PhaseResult:
        return bench.PhaseResult(expected=200, stored=stored, distinct=distinct, published=204, dead_letters=0,
                                 seconds=0.5, wall_seconds=1.5, publisher_seconds=0.1)

    assert phase(200, 200).ok and phase(200, 200).rate == 400
    assert not phase(199, 199).ok  # one lost
    assert not phase(200, 199).ok  # one duplicate stored twice, one lost: the count alone would pass
