"""`cityops bench api`: its numbers, its lean HTTP client, and a short real run."""

from __future__ import annotations

import argparse
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import loadgen
from benchmarks.api import Sample, run_bench, schedule, summarise
from cityops.settings import Settings
from cityops.storage import Database


@given(st.floats(1, 1000), st.floats(0.1, 5))
def test_the_schedule_is_evenly_spaced_at_the_rate(rate: float, seconds: float) -> None:
    due = schedule(rate, seconds)
    assert len(due) == int(rate * seconds)
    assert all(b - a == pytest.approx(1 / rate) for a, b in itertools.pairwise(due))
    assert all(t < seconds for t in due)


def test_percentiles_count_errors_and_the_rate_is_over_the_elapsed_time() -> None:
    samples = [Sample("/a", i / 1000, ok=i != 99) for i in range(1, 101)]  # 1..100 ms, one error
    summary = summarise(samples, elapsed_s=0.5)
    assert summary.requests == 100 and summary.errors == 1
    assert summary.rate == pytest.approx(200)
    assert summary.p50_ms == pytest.approx(50.5) and summary.max_ms == pytest.approx(100)
    assert 99 <= summary.p99_ms <= 100
    assert not summary.meets()  # an error fails the ceiling whatever the latency
    assert summarise([Sample("/a", 0.010, True)] * 100, 0.5).meets()


def test_a_reply_head_is_parsed_and_a_bad_one_refused() -> None:
    status, headers = loadgen.parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nX-A: b")
    assert status == 404 and headers == {"content-length": "12", "x-a": "b"}
    with pytest.raises(loadgen.LoadError):
        loadgen.parse_head(b"SSH-2.0-OpenSSH_9.2")


async def test_a_short_run_reports_its_numbers_and_cleans_up(db: Database, database_url: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    devices_before = await db.fetchval("SELECT count(*) FROM devices")
    args = argparse.Namespace(rate=40.0, seconds=1.0, warmup=0.0, households=20, connections=8)
    assert await run_bench(args, Settings(database_url=database_url)) == 0
    out = capsys.readouterr().out
    assert "GET /households/me:     20 requests" in out
    assert "errors 0" in out and "ceiling: p99 under 50 ms at 200 requests/s" in out
    assert await db.fetchval("SELECT count(*) FROM devices") == devices_before
    assert await db.fetchval("SELECT count(*) FROM users WHERE username LIKE 'bench-%'") == 0
