"""The readings write path and the hourly read path, the same on both back ends.

Writes are one statement per batch, `INSERT ... SELECT FROM unnest($1::type[], ...)
ON CONFLICT DO NOTHING`: a replayed reading (same device and timestamp) is ignored, and
the count that comes back is the number of new rows. (COPY is faster on PostgreSQL but
cannot ignore duplicates without a staging table, and unnest also works where COPY does
not, e.g. PGlite.)

Rows are written in key order, (device_id, ts): an insert takes a lock on each new key of
the unique index as it goes, so two transactions writing overlapping batches (two ingest
consumers, one given the other's resent window) in different orders could each hold a key
the other needs and deadlock. In one order, one of them simply waits for the other.

Hourly statistics come from `<kind>_hourly`: a continuous aggregate on TimescaleDB, a
date_bin view on plain PostgreSQL, with the same columns; callers never branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cityops.errors import StorageError
from cityops.storage.database import DB_ERRORS, Connection, Database, translate_query_error

DeviceKind = Literal["frog", "road", "bin"]


# Where a reading's timestamp came from (migration 0032): NULL, the device's own clock (the native
# agents); "network", a LoRaWAN network server's receive time; "device", a LoRaWAN device's own time.
TIME_SOURCE = ("time_source", "text")
TimeSource = Literal["network", "device"]


@dataclass(frozen=True)
class ReadingTable:
    kind: DeviceKind
    values: tuple[tuple[str, str], ...]  # (name, PostgreSQL type) of the reading's own values
    hourly_columns: tuple[str, ...]
    optional_values: int = 0  # the last values a row may leave out (added later; written as NULL)

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        """Every column a row fills, in order: the key, the values, the time source."""
        return (*_KEY, *self.values, TIME_SOURCE)

    @property
    def optional_tail(self) -> int:
        """How many of the last columns a row may leave out: the optional values and the time source."""
        return self.optional_values + 1

    @property
    def value_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.values)

    @property
    def table(self) -> str:
        return f"{self.kind}_readings"

    @property
    def hourly_view(self) -> str:
        return f"{self.kind}_hourly"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def insert_sql(self) -> str:
        names = ", ".join(self.column_names)
        arrays = ", ".join(f"${i}::{pgtype}[]" for i, (_, pgtype) in enumerate(self.columns, start=1))
        return (f"INSERT INTO {self.table} ({names}) SELECT * FROM unnest({arrays}) "
                f"ON CONFLICT DO NOTHING")  # the key (device_id, ts); no target: INSERT right alone


_KEY = (("device_id", "text"), ("ts", "timestamptz"))

READING_TABLES: dict[str, ReadingTable] = {
    "frog": ReadingTable("frog", (("air_temp_c", "real"), ("rh_pct", "real")),
                         ("air_temp_avg", "air_temp_min", "air_temp_max", "rh_avg", "rh_min", "rh_max")),
    "road": ReadingTable("road", (("surface_temp_c", "real"), ("air_temp_c", "real"),
                                  ("surface_state", "text"), ("lat", "float8"), ("lon", "float8"),
                                  ("rh_pct", "real")),
                         ("surface_temp_avg", "surface_temp_min", "surface_temp_max",
                          "air_temp_avg", "air_temp_min", "air_temp_max"), optional_values=1),
    "bin": ReadingTable("bin", (("distance_mm", "real"), ("fill_fraction", "real"),
                                ("temp_c", "real"), ("tilt_deg", "real")),
                        ("fill_avg", "fill_max", "distance_min", "temp_max", "tilt_max")),
}


def reading_table(kind: str) -> ReadingTable:
    try:
        return READING_TABLES[kind]
    except KeyError:
        raise StorageError(f"unknown device kind {kind!r}; expected one of {', '.join(READING_TABLES)}") \
            from None


@dataclass(frozen=True)
class HourlyStat:
    device_id: str
    bucket: datetime
    readings: int
    values: dict[str, float | None]


def in_key_order(rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """The rows sorted by their key, (device_id, ts): the order every writer locks them in.

    Rows whose keys do not compare (a missing or naive timestamp) stay as they are: the
    database, not this sort, says what is wrong with them."""
    try:
        return sorted(rows, key=lambda row: (row[0], row[1]))
    except TypeError:
        return rows


async def insert_readings(executor: Database | Connection, kind: str,
                          rows: Sequence[Sequence[Any]]) -> int:
    """Write rows (tuples in the table's column order) in one statement, in key order (above);
    return how many were new."""
    spec = reading_table(kind)
    if not rows:
        return 0
    width = len(spec.columns)
    if any(not width - spec.optional_tail <= len(row) <= width for row in rows):
        names = spec.column_names
        required, optional = names[:width - spec.optional_tail], names[width - spec.optional_tail:]
        raise StorageError(f"{spec.table} rows need {len(required)} values ({', '.join(required)}), and may add "
                           f"{', '.join(optional)}")
    columns = _columns(in_key_order(rows), width)
    conn = executor.pool if isinstance(executor, Database) else executor
    try:
        status = await conn.execute(spec.insert_sql, *columns)
    except DB_ERRORS as exc:
        raise translate_query_error(exc) from exc
    return int(status.rsplit(" ", 1)[-1])


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to column arrays, the columns rows leave out as NULL (when all rows are as long, as on
    the native path's hot loop, no row is copied)."""
    lengths = {len(row) for row in rows}
    if len(lengths) > 1:
        rows = [tuple(row) + (None,) * (width - len(row)) for row in rows]
        lengths = {width}
    columns = [list(col) for col in zip(*rows, strict=True)]
    return columns + [[None] * len(rows) for _ in range(width - lengths.pop())]


async def hourly_stats(db: Database, kind: str, start: datetime, end: datetime,
                       device_ids: Sequence[str] | None = None) -> list[HourlyStat]:
    """Hourly count and statistics per device for buckets in [start, end)."""
    spec = reading_table(kind)
    columns = ", ".join(spec.hourly_columns)
    query = (f"SELECT device_id, bucket, readings, {columns} FROM {spec.hourly_view} "
             f"WHERE bucket >= $1 AND bucket < $2 AND ($3::text[] IS NULL OR device_id = ANY($3)) "
             f"ORDER BY device_id, bucket")
    rows = await db.fetch(query, start, end, list(device_ids) if device_ids is not None else None)
    return [HourlyStat(device_id=row["device_id"], bucket=row["bucket"], readings=row["readings"],
                       values={name: row[name] for name in spec.hourly_columns})
            for row in rows]


@dataclass(frozen=True)
class DeadLetter:
    """A message (or one reading of it) that could not be accepted, and why."""

    topic: str
    payload: bytes
    reason: str
    device_id: str | None = None
    received_at: datetime | None = None  # None: the time of writing


async def insert_dead_letters(executor: Database | Connection, letters: Sequence[DeadLetter]) -> int:
    """Keep refused messages for an operator to inspect, in one statement."""
    if not letters:
        return 0
    conn = executor.pool if isinstance(executor, Database) else executor
    try:
        await conn.execute(
            "INSERT INTO dead_letters (topic, device_id, reason, payload, received_at) "
            "SELECT t, d, r, p, coalesce(a, now()) FROM unnest($1::text[], $2::text[], $3::text[], "
            "$4::bytea[], $5::timestamptz[]) AS u(t, d, r, p, a)",
            [x.topic for x in letters], [x.device_id for x in letters], [x.reason for x in letters],
            [x.payload for x in letters], [x.received_at for x in letters])
    except DB_ERRORS as exc:
        raise translate_query_error(exc) from exc
    return len(letters)


async def insert_dead_letter(executor: Database | Connection, *, topic: str, payload: bytes,
                             reason: str, device_id: str | None = None) -> None:
    await insert_dead_letters(executor, [DeadLetter(topic, payload, reason, device_id)])
