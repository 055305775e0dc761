"""The spool: order, acknowledgement, durability across reopen, the disk budget."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.telemetry import FrogReading
from firmware.errors import SpoolError
from firmware.spool import ROW_OVERHEAD_BYTES, Spool

START = datetime(2026, 1, 5, tzinfo=UTC)


def frog(k: int) -> FrogReading:
    return FrogReading(ts=START + timedelta(minutes=5 * k), air_temp_c=18.0 + k / 100, rh_pct=60.0)


def test_readings_come_back_in_order_and_leave_only_when_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", FrogReading)
    ids = [spool.add(frog(k)) for k in range(10)]
    first = spool.oldest(4)
    assert [row.reading for row in first] == [frog(k) for k in range(4)]
    assert [row.reading for row in spool.oldest(3, after_id=first[-1].id)] == [frog(k) for k in range(4, 7)]
    spool.acknowledge([row.id for row in first])
    spool.acknowledge([ids[0]])  # a late duplicate ack changes nothing
    assert spool.pending() == 6 and spool.oldest(1)[0].reading == frog(4)
    spool.close()


def test_the_spool_survives_a_reopen_with_its_sequence_number(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    spool = Spool(path, FrogReading)
    for k in range(5):
        spool.add(frog(k))
    assert [spool.next_seq() for _ in range(3)] == [1, 2, 3]
    spool.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = Spool(path, FrogReading)
    assert again.pending() == 5 and again.oldest(1)[0].reading == frog(0)
    assert again.next_seq() == 4  # never reused after a restart
    again.close()


def test_the_budget_drops_the_oldest_first_and_counts_them(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    row_bytes = len(b'{"ts":"2026-01-05T00:00:00Z","air_temp_c":18.0,"rh_pct":60.0}') + ROW_OVERHEAD_BYTES
    spool = Spool(tmp_path / "s.sqlite3", FrogReading, budget_bytes=20 * row_bytes)
    with caplog.at_level(logging.WARNING, logger="firmware.spool"):
        for k in range(50):
            spool.add(frog(k))
    stats = spool.stats()
    assert stats.stored_bytes <= stats.budget_bytes
    kept = [row.reading for row in spool.oldest(100)]
    assert kept == [frog(k) for k in range(50 - len(kept), 50)]  # the newest, contiguous, in order
    assert stats.dropped == 50 - len(kept) > 25
    assert "over its" in caplog.text and "dropped" in caplog.text
    spool.close()
    reopened = Spool(tmp_path / "s.sqlite3", FrogReading, budget_bytes=20 * row_bytes)
    assert reopened.dropped == stats.dropped and reopened.stats().stored_bytes == stats.stored_bytes
    reopened.close()


def test_an_unusable_spool_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SpoolError, match="unusable"):
        Spool(path, FrogReading)
    with pytest.raises(SpoolError, match="too small"):
        Spool(tmp_path / "t.sqlite3", FrogReading, budget_bytes=10)


def test_a_full_disk_drops_the_oldest_instead_of_failing(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    spool = Spool(tmp_path / "s.sqlite3", FrogReading, budget_bytes=50_000_000)
    spool._db.execute("PRAGMA max_page_count = 12")  # the file system is full at 12 pages
    with caplog.at_level(logging.WARNING, logger="firmware.spool"):
        for k in range(600):
            spool.add(frog(k))
    assert caplog.text.count("disk full") == 1  # logged once, not at every reading
    assert spool.dropped > 0 and spool.pending() + spool.dropped == 600
    assert spool.oldest(1000)[-1].reading == frog(599)  # the newest is always kept
    spool._db.execute("PRAGMA max_page_count = 100000")  # space freed on the card
    with caplog.at_level(logging.INFO, logger="firmware.spool"):
        for k in range(600, 1200):
            spool.add(frog(k))
    assert "recovered" in caplog.text and spool.pending() + spool.dropped == 1200
    spool.close()
