"""Grafana's PostgreSQL query expansion, as a pure function: what a panel's SQL becomes
before Grafana sends it to the database.

Three passes, in Grafana's order:
1. template variables (the browser's `templateSrv.replace`): `$var`, `${var}`,
   `${var:format}`, `[[var]]`; multi-value and `All` selections formatted as the
   PostgreSQL data source formats them (quoted literals joined by commas) or as the
   `:format` asks (sqlstring, csv, singlequote, doublequote, pipe, raw);
2. the global substitutions of Grafana's SQL engine (`pkg/tsdb/sqleng`): `$__interval_ms`,
   `$__interval`, `$__unixEpochFrom()`, `$__unixEpochTo()`;
3. the PostgreSQL macro engine (`pkg/tsdb/grafana-postgresql-datasource/macros.go`):
   `$__time`, `$__timeEpoch`, `$__timeFilter`, `$__timeFrom`, `$__timeTo`, `$__timeGroup`
   (`time_bucket` when the data source has TimescaleDB switched on), `$__timeGroupAlias`,
   `$__unixEpochFilter`, `$__unixEpochNanoFilter/From/To`, `$__unixEpochGroup(Alias)`.

The tests run every panel's SQL through this against a real database, so a board that
would fail in Grafana fails here first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dashboards.errors import MacroError

ALL = "$__all"  # the value Grafana stores for an `All` selection


@dataclass(frozen=True)
class Selection:
    """A template variable's current value as Grafana holds it.

    `values` are the selected options (for `All` without a custom all value: every
    option); `multi`/`include_all` are the variable's flags, which change how the
    PostgreSQL data source quotes a single value; `all_value` is a custom all value,
    inserted raw, never quoted."""

    values: tuple[str, ...]
    multi: bool = False
    include_all: bool = False
    all_selected: bool = False
    all_value: str | None = None

    @classmethod
    def single(cls, value: str) -> Selection:
        return cls((value,))

    @classmethod
    def many(cls, values: Sequence[str], *, include_all: bool = True) -> Selection:
        return cls(tuple(values), multi=True, include_all=include_all)

    @classmethod
    def all(cls, options: Sequence[str], *, multi: bool = True, all_value: str | None = None) -> Selection:
        """`All` selected: Grafana sends every option (or the custom all value)."""
        return cls(tuple(options), multi=multi, include_all=True, all_selected=True, all_value=all_value)

    @property
    def is_list(self) -> bool:
        return self.multi or self.all_selected


@dataclass(frozen=True)
class QueryContext:
    time_from: datetime
    time_to: datetime
    interval: timedelta = timedelta(minutes=1)
    timescaledb: bool = False
    variables: Mapping[str, Selection] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time_from.tzinfo is None or self.time_to.tzinfo is None:
            raise ValueError("the time range must be timezone-aware")
        if self.time_to < self.time_from:
            raise ValueError("the time range ends before it starts")


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL Grafana would send for this panel query under `ctx`."""
    sql = interpolate_variables(sql, ctx)
    sql = _global_substitutions(sql, ctx)
    return _macros(sql, ctx)


# --- 1. template variables --------------------------------------------------------------

# Grafana's variable regex (public/app/features/variables/utils.ts)
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def interpolate_variables(sql: str, ctx: QueryContext) -> str:
    scoped = {"__interval": format_interval(ctx.interval),
              "__interval_ms": str(int(ctx.interval / timedelta(milliseconds=1)))}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in scoped:
            return scoped[name]
        selection = ctx.variables.get(name)
        if selection is None:
            return match.group(0)  # not a variable (e.g. a macro): Grafana leaves it
        return format_selection(selection, fmt)

    return _VARIABLE.sub(replace, sql)


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def format_selection(selection: Selection, fmt: str | None) -> str:
    """A variable's text in the query: the PostgreSQL data source's default or a `:format`."""
    if selection.all_selected and selection.all_value is not None:
        return selection.all_value  # a custom all value is never escaped
    values = selection.values
    if not values:
        raise MacroError("a variable with no value would leave an empty list in the SQL", macro="variable",
                         hint="give the variable at least one option")
    if fmt is None:  # the data source's interpolateVariable
        if selection.is_list:
            return ",".join(quote_literal(v) for v in values)
        return values[0].replace("'", "''")
    text = values if selection.is_list else values[:1]
    match fmt:
        case "sqlstring":
            return ",".join(quote_literal(v) for v in text)
        case "csv" | "raw":
            return ",".join(text)
        case "pipe":
            return "|".join(text)
        case "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in text)
        case "doublequote":
            return ",".join('"' + v.replace('"', '\\"') + '"' for v in text)
    raise MacroError(f"variable format {fmt!r} is not supported here", macro=fmt,
                     hint="use sqlstring, csv, raw, pipe, singlequote or doublequote")


# --- 2. the SQL engine's globals --------------------------------------------------------

def _global_substitutions(sql: str, ctx: QueryContext) -> str:
    sql = sql.replace("$__interval_ms", str(int(ctx.interval / timedelta(milliseconds=1))))
    sql = sql.replace("$__interval", format_interval(ctx.interval))
    sql = sql.replace("$__unixEpochFrom()", str(_unix(ctx.time_from)))
    return sql.replace("$__unixEpochTo()", str(_unix(ctx.time_to)))


# --- 3. the PostgreSQL macro engine -----------------------------------------------------

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")


def _macros(sql: str, ctx: QueryContext) -> str:
    original = sql

    def replace(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip(" ") for a in match.group(2).split(",")]
        if name == "__timeGroup":  # pre-5.3 compatibility: a ',' right after means "AS time"
            end = original.find(match.group(0))
            if end >= 0 and original[end + len(match.group(0)):][:1] == ",":
                name = "__timeGroupAlias"
        return _macro(name, args, ctx)

    return _MACRO.sub(replace, sql)


def _macro(name: str, args: list[str], ctx: QueryContext) -> str:
    column = args[0] if args and args[0] else None

    def need_column() -> str:
        if column is None:
            raise MacroError(f"missing time column argument for macro {name}", macro=name)
        return column

    match name:
        case "__time":
            return f'{need_column()} AS "time"'
        case "__timeEpoch":
            return f'extract(epoch from {need_column()}) as "time"'
        case "__timeFilter":
            return f"{need_column()} BETWEEN '{rfc3339(ctx.time_from)}' AND '{rfc3339(ctx.time_to)}'"
        case "__timeFrom":
            return f"'{rfc3339(ctx.time_from)}'"
        case "__timeTo":
            return f"'{rfc3339(ctx.time_to)}'"
        case "__timeGroup" | "__unixEpochGroup":
            if len(args) < 2:
                raise MacroError(f"macro {name} needs time column and interval and optional fill value", macro=name)
            seconds = parse_interval(args[1].strip("'")).total_seconds()
            if name == "__unixEpochGroup":
                return f"floor(({args[0]})/{_go_float(seconds)})*{_go_float(seconds)}"
            if ctx.timescaledb:
                return f"time_bucket('{seconds:.3f}s',{args[0]})"
            return f"floor(extract(epoch from {args[0]})/{_go_float(seconds)})*{_go_float(seconds)}"
        case "__timeGroupAlias":
            return _macro("__timeGroup", args, ctx) + ' AS "time"'
        case "__unixEpochGroupAlias":
            return _macro("__unixEpochGroup", args, ctx) + ' AS "time"'
        case "__unixEpochFilter":
            col = need_column()
            return f"{col} >= {_unix(ctx.time_from)} AND {col} <= {_unix(ctx.time_to)}"
        case "__unixEpochNanoFilter":
            col = need_column()
            return f"{col} >= {_unix_nano(ctx.time_from)} AND {col} <= {_unix_nano(ctx.time_to)}"
        case "__unixEpochNanoFrom":
            return str(_unix_nano(ctx.time_from))
        case "__unixEpochNanoTo":
            return str(_unix_nano(ctx.time_to))
    raise MacroError(f"unknown macro {name!r}", macro=name)


# --- time formatting as Go does it ------------------------------------------------------

def rfc3339(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: no trailing zeros in the fraction, `Z`."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _unix(moment: datetime) -> int:
    return int(moment.timestamp() // 1)


def _unix_nano(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _go_float(value: float) -> str:
    """Go's %v for a float64 of the sizes intervals have."""
    return str(int(value)) if value == int(value) else repr(value)


_UNITS = {"ms": timedelta(milliseconds=1), "s": timedelta(seconds=1), "m": timedelta(minutes=1),
          "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1),
          "M": timedelta(days=30), "y": timedelta(days=365)}
_INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d|w|M|y)$")


def parse_interval(text: str) -> timedelta:
    """Grafana's interval syntax: `5m`, `1h`, `20ms`, `12d`."""
    match = _INTERVAL.match(text.strip())
    if match is None:
        raise MacroError(f"error parsing interval {text}", macro="__timeGroup",
                         hint="an interval is a whole number and a unit: ms, s, m, h, d, w, M or y")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_interval(interval: timedelta) -> str:
    """Grafana's interval text (gtime.FormatInterval): the largest whole unit."""
    for unit, size in (("y", _UNITS["y"]), ("d", _UNITS["d"]), ("h", _UNITS["h"]), ("m", _UNITS["m"]),
                       ("s", _UNITS["s"]), ("ms", _UNITS["ms"])):
        if interval >= size:
            return f"{interval // size}{unit}"
    return "1ms"
