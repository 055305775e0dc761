"""The store-and-forward spool: readings on disk until the platform has confirmed them.

SQLite in WAL mode, one file per device. A reading is committed here before anything
tries to send it and deleted only when ingest's receipt for the message that carried it
arrives (or, for an agent without receipts, the broker's PUBACK: firmware/sender.py), so
a power cut (kill -9), a broker away for days or a broker that crashes loses nothing:
what was in flight is sent again (the platform drops the duplicates).

The spool is bounded by a byte budget on the stored readings: past it the oldest are
dropped first, counted in `dropped` (kept on disk, so the count survives restarts) and
logged. The per-device message sequence number lives here too, for the same reason.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from contract.telemetry import BinReading, FrogReading, Kind, Reading, RoadReading
from firmware.errors import SpoolError
from firmware.faults import FaultLog

log = logging.getLogger("firmware.spool")

ReadingType = type[FrogReading] | type[RoadReading] | type[BinReading]
READING_TYPES: dict[Kind, ReadingType] = {
    "frog": FrogReading, "road": RoadReading, "bin": BinReading}
ROW_OVERHEAD_BYTES = 48  # rowid, length header, b-tree cell: counted against the budget
_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('seq', 0), ('dropped', 0);
"""


@dataclass(frozen=True)
class Spooled:
    id: int
    reading: Reading


@dataclass(frozen=True)
class SpoolStats:
    pending: int
    stored_bytes: int
    budget_bytes: int
    dropped: int  # readings dropped for the budget since the spool file was created


class Spool:
    """Not thread-safe: use it from one thread (the agent's event loop)."""

    def __init__(self, path: Path | str, reading_type: ReadingType, budget_bytes: int = 50_000_000,
                 *, durable: bool = True):
        if budget_bytes < 1024:
            raise SpoolError(f"spool budget of {budget_bytes} bytes is too small to be useful")
        self.path = Path(path)
        self.budget_bytes = budget_bytes
        self._faults = FaultLog(log)
        self._full_at_pages: int | None = None  # the file's size when the disk filled up
        self._decoder: msgspec.json.Decoder[Reading] = msgspec.json.Decoder(reading_type)
        self._encoder = msgspec.json.Encoder()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit survives power loss, not only a killed process.
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
            self._stored_bytes = self._scalar(
                f"SELECT coalesce(sum(length(body) + {ROW_OVERHEAD_BYTES}), 0) FROM readings")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise SpoolError(f"the spool {self.path} is unusable: {exc}",
                             hint="move the file aside; the agent starts a new one") from None

    def _pages(self) -> int:
        return self._scalar("PRAGMA page_count")

    def _scalar(self, sql: str, *args: object) -> int:
        return int(self._db.execute(sql, args).fetchone()[0])

    def add(self, reading: Reading) -> int:
        """Commit one reading; returns its id. Drops the oldest when over budget."""
        body = self._encoder.encode(reading)
        try:
            row_id = self._insert(body)
        except sqlite3.OperationalError as exc:
            self._raise_unless_full(exc)
            row_id = self._insert_making_room(body)
        else:
            if self._full_at_pages is not None and self._pages() > self._full_at_pages:
                self._full_at_pages = None  # the file grew again: the disk has room
                self._faults.clear("spool")
        self._enforce_budget()
        return row_id

    def _raise_unless_full(self, exc: sqlite3.OperationalError) -> None:
        if "full" not in str(exc):
            raise SpoolError(f"cannot write to the spool {self.path}: {exc}") from None

    def _insert_making_room(self, body: bytes) -> int:
        """The disk filled up before the budget did: drop the oldest (a tenth, then more) until
        the new reading fits, by the same rule as the budget."""
        self._faults.report("spool", f"disk full writing {self.path}: dropping the oldest readings")
        self._full_at_pages = self._pages()
        share = 10
        while self.pending():
            self._drop_oldest(max(1, self.pending() // share))
            try:
                return self._insert(body)
            except sqlite3.OperationalError as exc:
                self._raise_unless_full(exc)
            share = max(1, share // 2)
        raise SpoolError(f"disk full: no room for even one reading in {self.path}")

    def _insert(self, body: bytes) -> int:
        cursor = self._db.execute("INSERT INTO readings (body) VALUES (?)", (body,))
        self._stored_bytes += len(body) + ROW_OVERHEAD_BYTES
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _enforce_budget(self) -> None:
        excess = self._stored_bytes - self.budget_bytes
        if excess <= 0:
            return
        average = max(1, self._stored_bytes // max(1, self.pending()))
        dropped = 0
        while self._stored_bytes > self.budget_bytes:
            dropped += self._drop_oldest(max(1, (self._stored_bytes - self.budget_bytes) // average + 1))
        log.warning("spool over its %d-byte budget: dropped the %d oldest readings (%d dropped in all)",
                    self.budget_bytes, dropped, self.dropped)

    def _drop_oldest(self, count: int) -> int:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            sizes = self._db.execute(
                "DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?) "
                "RETURNING length(body)", (count,)).fetchall()
            self._db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (len(sizes),))
        self._stored_bytes -= sum(size + ROW_OVERHEAD_BYTES for (size,) in sizes)
        return len(sizes)

    def oldest(self, limit: int, after_id: int = 0) -> list[Spooled]:
        """Up to `limit` readings with id > after_id, oldest first."""
        rows = self._db.execute("SELECT id, body FROM readings WHERE id > ? ORDER BY id LIMIT ?",
                                (after_id, limit)).fetchall()
        return [Spooled(row_id, self._decoder.decode(body)) for row_id, body in rows]

    def acknowledge(self, ids: Sequence[int]) -> int:
        """The platform has them: delete; returns how many were still here (ids already
        deleted, by an earlier receipt or the budget, are ignored)."""
        if not ids:
            return 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            deleted = self._db.execute(
                f"DELETE FROM readings WHERE id IN ({','.join('?' * len(ids))}) RETURNING length(body)",
                tuple(ids)).fetchall()
        self._stored_bytes -= sum(size + ROW_OVERHEAD_BYTES for (size,) in deleted)
        return len(deleted)

    def next_seq(self) -> int:
        """The next message sequence number, persisted (never reused after a restart)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            return self._scalar("UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value")

    def pending(self) -> int:
        return self._scalar("SELECT count(*) FROM readings")

    @property
    def dropped(self) -> int:
        return self._scalar("SELECT value FROM meta WHERE key = 'dropped'")

    def stats(self) -> SpoolStats:
        return SpoolStats(self.pending(), self._stored_bytes, self.budget_bytes, self.dropped)

    def close(self) -> None:
        self._db.close()
