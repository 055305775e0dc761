"""Readings over a time range, downsampled into buckets.

`plan_window` (pure) checks a request against the caps and chooses the bucket: at most
MAX_RANGE long and MAX_POINTS buckets, aligned to the bucket grid (from 2000-01-01 UTC) so
that every source gives the same buckets. `series` reads either the raw table with date_bin
(any bucket, exact) or, for whole hours, the `<kind>_hourly` view (the continuous
aggregate on TimescaleDB, where it saves reading the raw rows; on plain PostgreSQL the view
is date_bin over the raw table, so the raw read is as good). Averages from hourly rows are
weighted by their reading counts, so both sources agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from cityops.storage import Database
from ops_api.errors import InvalidRequest
from rules.errors import InvalidReading
from rules.psychro import dew_point

MAX_RANGE = timedelta(days=400)
MAX_POINTS = 5_000
TARGET_POINTS = 500            # the automatic bucket aims at no more than this many
BUCKETS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400, 7 * 86_400)
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Column:
    name: str
    raw: str           # aggregate over the raw table
    hourly: str        # the same from the hourly view's columns


def _weighted(avg: str) -> str:
    return f"sum({avg} * readings) / nullif(sum(readings) FILTER (WHERE {avg} IS NOT NULL), 0)"


SERIES: dict[str, tuple[Column, ...]] = {
    "frog": (Column("air_temp_c", "avg(air_temp_c)", _weighted("air_temp_avg")),
             Column("rh_pct", "avg(rh_pct)", _weighted("rh_avg"))),
    "road": (Column("surface_temp_c", "avg(surface_temp_c)", _weighted("surface_temp_avg")),
             Column("surface_temp_min_c", "min(surface_temp_c)", "min(surface_temp_min)"),
             Column("air_temp_c", "avg(air_temp_c)", _weighted("air_temp_avg"))),
    "bin": (Column("fill_fraction", "avg(fill_fraction)", _weighted("fill_avg")),
            Column("distance_min_mm", "min(distance_mm)", "min(distance_min)"),
            Column("temp_max_c", "max(temp_c)", "max(temp_max)"),
            Column("tilt_max_deg", "max(tilt_deg)", "max(tilt_max)")),
}


@dataclass(frozen=True)
class Window:
    start: datetime     # on the bucket grid
    end: datetime       # exclusive, on the bucket grid
    bucket_s: int

    @property
    def points(self) -> int:
        return int((self.end - self.start).total_seconds()) // self.bucket_s


def as_utc(moment: datetime) -> datetime:
    """Naive times are taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _floor(moment: datetime, bucket_s: int) -> datetime:
    seconds = (moment - ORIGIN).total_seconds()
    return ORIGIN + timedelta(seconds=math.floor(seconds / bucket_s) * bucket_s)


def _ceil(moment: datetime, bucket_s: int) -> datetime:
    seconds = (moment - ORIGIN).total_seconds()
    return ORIGIN + timedelta(seconds=math.ceil(seconds / bucket_s) * bucket_s)


def auto_bucket(span: timedelta, target: int = TARGET_POINTS) -> int:
    """The smallest bucket on the ladder that gives at most `target` points over `span`."""
    seconds = span.total_seconds()
    return next((b for b in BUCKETS_S if seconds / b <= target), BUCKETS_S[-1])


def plan_window(start: datetime | None, end: datetime | None, bucket_s: int | None, *, now: datetime,
                default_span: timedelta = timedelta(hours=24), max_range: timedelta = MAX_RANGE,
                max_points: int = MAX_POINTS) -> Window:
    """Check a requested range and bucket against the caps; InvalidRequest says which and what to do."""
    end = as_utc(end) if end is not None else as_utc(now)
    start = as_utc(start) if start is not None else end - default_span
    if start >= end:
        raise InvalidRequest(f"start {start.isoformat()} is not before end {end.isoformat()}", field="start",
                             hint="give a start earlier than the end")
    if end - start > max_range:
        raise InvalidRequest(f"the range is {(end - start).days} days; at most {max_range.days} days at once",
                             field="end", hint=f"ask for {max_range.days} days or fewer per request and page "
                                               f"through longer periods")
    if bucket_s is not None and bucket_s < 60:
        raise InvalidRequest(f"bucket_s {bucket_s} is below 60 s", field="bucket_s",
                             hint="give a bucket of 60 s or more, or leave it out to choose one")
    bucket = bucket_s if bucket_s is not None else auto_bucket(end - start)
    window = Window(_floor(start, bucket), _ceil(end, bucket), bucket)
    if window.points > max_points:
        wanted = math.ceil((end - start).total_seconds() / max_points)
        raise InvalidRequest(f"{window.points} buckets of {bucket} s; at most {max_points} points per request",
                             field="bucket_s", hint=f"use a bucket of at least {wanted} s, a shorter range, "
                                                    f"or leave bucket_s out to choose one")
    return window


def use_hourly(window: Window, timescale: bool) -> bool:
    """The hourly continuous aggregate fits whole-hour buckets on TimescaleDB."""
    return timescale and window.bucket_s % 3600 == 0


async def series(db: Database, kind: str, device_id: str, window: Window, *, hourly: bool = False,
                 since: datetime | None = None) -> list[dict[str, Any]]:
    """One device's buckets in [window.start, window.end): ts, readings and the kind's values.
    Buckets without readings are left out. `since` (a tenancy's start) leaves out every reading
    before it, even inside a bucket that straddles it: from the hourly view, whole hours from
    the first one that starts at or after it."""
    columns = SERIES[kind]
    if hourly:
        aggregates = ", ".join(f"{c.hourly} AS {c.name}" for c in columns)
        query = (f"SELECT date_bin(make_interval(secs => $4), bucket, $5) AS ts, sum(readings)::bigint AS readings, "
                 f"{aggregates} FROM {kind}_hourly WHERE device_id = $1 AND bucket >= $2 AND bucket < $3 "
                 f"AND bucket >= $6 GROUP BY 1 ORDER BY 1")
        floor = window.start if since is None else _ceil(as_utc(since), 3600)
    else:
        aggregates = ", ".join(f"{c.raw} AS {c.name}" for c in columns)
        query = (f"SELECT date_bin(make_interval(secs => $4), ts, $5) AS ts, count(*) AS readings, {aggregates} "
                 f"FROM {kind}_readings WHERE device_id = $1 AND ts >= $2 AND ts < $3 AND ts >= $6 "
                 f"GROUP BY 1 ORDER BY 1")
        floor = window.start if since is None else as_utc(since)
    rows = await db.fetch(query, device_id, window.start, window.end, float(window.bucket_s), ORIGIN, floor)
    names = [c.name for c in columns]
    points: list[dict[str, Any]] = []
    for row in rows:  # the hot path of every chart: plain loops, no per-value calls
        ts, readings, *values = row
        point: dict[str, Any] = {"ts": ts.isoformat(), "readings": int(readings)}
        for name, value in zip(names, values, strict=True):
            point[name] = None if value is None else round(value, 3)
        points.append(point)
    if kind == "frog":
        add_dew_points(points)
    return points


def dew_points(temp_c: list[float | None], rh_pct: list[float | None]) -> list[float | None]:
    """Dew point per pair; None where either is missing or the humidity is outside (0, 100]."""
    temp = np.array([np.nan if t is None else t for t in temp_c], dtype=np.float64)
    rh = np.array([np.nan if h is None else h for h in rh_pct], dtype=np.float64)
    ok = np.isfinite(temp) & np.isfinite(rh) & (rh > 0) & (rh <= 100) & (temp > -273.15)
    out: list[float | None] = [None] * len(temp_c)
    if ok.any():
        try:
            values = dew_point(temp[ok], rh[ok])
        except InvalidReading:      # e.g. humidity sent as fractions: no dew point rather than a wrong one
            return out
        for i, value in zip(np.flatnonzero(ok).tolist(), values.tolist(), strict=True):
            out[i] = round(float(value), 2)
    return out


def add_dew_points(points: list[dict[str, Any]]) -> None:
    for point, dew in zip(points, dew_points([p["air_temp_c"] for p in points], [p["rh_pct"] for p in points]),
                          strict=True):
        point["dew_point_c"] = dew
