"""Grafana's macro and variable expansion (dashboards/macros.py) against the expansions
Grafana documents and tests: pkg/tsdb/grafana-postgresql-datasource/macros_test.go for
the macros, the "Advanced variable format options" page for the variable formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboards.errors import MacroError
from dashboards.macros import (
    QueryContext,
    Selection,
    expand,
    format_interval,
    format_selection,
    parse_interval,
    rfc3339,
)

FROM = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
TO = FROM + timedelta(minutes=5)
CTX = QueryContext(FROM, TO)
TS = QueryContext(FROM, TO, timescaledb=True)


@pytest.mark.parametrize(("sql", "expected"), [
    ("select $__time(time_column)", 'select time_column AS "time"'),
    ("select $__timeEpoch(time_column)", 'select extract(epoch from time_column) as "time"'),
    ("WHERE $__timeFilter(time_column)",
     "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"),
    ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
    ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
    # pre-5.3 compatibility: a ',' right after $__timeGroup means the alias
    ("SELECT $__timeGroup(time_column,'5m'), value",
     'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value'),
    ("SELECT $__timeGroup(time_column,'5m') as time, value",
     "SELECT floor(extract(epoch from time_column)/300)*300 as time, value"),
    ("SELECT $__timeGroup(time_column,'5m')", "SELECT floor(extract(epoch from time_column)/300)*300"),
    ("SELECT $__timeGroupAlias(time_column,'5m')",
     'SELECT floor(extract(epoch from time_column)/300)*300 AS "time"'),
    ("$__timeGroup(time_column , '5m')", "floor(extract(epoch from time_column)/300)*300"),
    ("select $__unixEpochFilter(time)", "select time >= 1523556000 AND time <= 1523556300"),
    ("select $__unixEpochNanoFilter(time)",
     "select time >= 1523556000000000000 AND time <= 1523556300000000000"),
    ("select $__unixEpochNanoFrom()", "select 1523556000000000000"),
    ("select $__unixEpochNanoTo()", "select 1523556300000000000"),
    ("SELECT $__unixEpochGroup(time_column+time_adjustment,'5m')",
     "SELECT floor((time_column+time_adjustment)/300)*300"),
    ("SELECT $__unixEpochGroupAlias(time_column+time_adjustment,'5m')",
     'SELECT floor((time_column+time_adjustment)/300)*300 AS "time"'),
    ("select $__unixEpochFrom(), $__unixEpochTo()", "select 1523556000, 1523556300"),
])
def test_macros_expand_as_grafanas_own_tests_say(sql: str, expected: str) -> None:
    assert expand(sql, CTX) == expected


@pytest.mark.parametrize(("sql", "expected"), [
    ("GROUP BY $__timeGroup(time_column,'5m')", "GROUP BY time_bucket('300.000s',time_column)"),
    ("GROUP BY $__timeGroup(time_column , '5m')", "GROUP BY time_bucket('300.000s',time_column)"),
    ("GROUP BY $__timeGroup(time_column , '12d')", "GROUP BY time_bucket('1036800.000s',time_column)"),
    ("GROUP BY $__timeGroup(time_column , '20ms')", "GROUP BY time_bucket('0.020s',time_column)"),
])
def test_time_group_uses_time_bucket_when_the_data_source_has_timescaledb(sql: str, expected: str) -> None:
    assert expand(sql, TS) == expected


def test_time_filter_keeps_go_fractions_and_old_dates() -> None:
    start = datetime(1960, 2, 1, 7, 0, 0, 500_000, tzinfo=UTC)
    end = datetime(1980, 2, 3, 8, 0, 0, 500_000, tzinfo=UTC)
    assert rfc3339(start) == "1960-02-01T07:00:00.5Z" and rfc3339(end) == "1980-02-03T08:00:00.5Z"
    ctx = QueryContext(start, end)
    assert expand("WHERE $__timeFilter(t)", ctx) == \
        "WHERE t BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'"
    assert expand("select $__unixEpochFilter(time)", ctx) == "select time >= -312915600 AND time <= 318412800"


def test_interval_variables_are_replaced_before_the_macros() -> None:
    ctx = QueryContext(FROM, TO, interval=timedelta(minutes=10))
    assert expand("SELECT $__interval /*app='grafana'*/", ctx) == "SELECT 10m /*app='grafana'*/"
    assert expand("SELECT $__timeGroupAlias(ts, $__interval), $__interval_ms", ctx) == \
        'SELECT floor(extract(epoch from ts)/600)*600 AS "time", 600000'
    assert expand("SELECT $__timeGroup(ts, ${__interval})", QueryContext(FROM, TO, timedelta(hours=1), True)) \
        == "SELECT time_bucket('3600.000s',ts)"


def test_a_timezone_aware_offset_is_written_in_utc() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2024, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/London"))
    assert rfc3339(local) == "2024-07-01T11:00:00Z"


# --- variables --------------------------------------------------------------------------

def test_sqlstring_quotes_and_escapes_each_value_as_documented() -> None:
    servers = Selection.many(["test'1", "test2"])
    assert format_selection(servers, "sqlstring") == "'test''1','test2'"
    assert format_selection(Selection.many(["test1", "test2"]), "csv") == "test1,test2"
    assert format_selection(Selection.many(["test1", "test2"]), "pipe") == "test1|test2"
    assert format_selection(Selection.many(["test1", "test2"]), "singlequote") == "'test1','test2'"
    assert format_selection(Selection.many(["test1", "test2"]), "doublequote") == '"test1","test2"'
    assert format_selection(Selection.single("it's"), "sqlstring") == "'it''s'"


def test_the_data_sources_default_quotes_multi_values_but_not_a_single_one() -> None:
    assert format_selection(Selection.many(["a", "b'c"]), None) == "'a','b''c'"
    assert format_selection(Selection.single("b'c"), None) == "b''c"  # escaped, not quoted
    assert format_selection(Selection.many(["a"]), None) == "'a'"  # multi: quoted even alone


def test_all_sends_every_option_or_the_custom_all_value_raw() -> None:
    every = Selection.all(["north", "St John's"])
    assert format_selection(every, "sqlstring") == "'north','St John''s'"
    custom = Selection.all(["north"], all_value="%")
    assert format_selection(custom, "sqlstring") == "%"
    assert format_selection(custom, None) == "%"


def test_every_variable_syntax_is_replaced_and_unknown_names_are_left() -> None:
    ctx = QueryContext(FROM, TO, variables={"area": Selection.many(["n", "s"]), "kind": Selection.single("frog")})
    sql = "a IN (${area:sqlstring}) AND b IN ($area) AND c = '$kind' AND d = '[[kind]]' AND e = '${kind}' AND $other"
    assert expand(sql, ctx) == ("a IN ('n','s') AND b IN ('n','s') AND c = 'frog' AND d = 'frog' "
                                "AND e = 'frog' AND $other")


def test_bad_input_is_a_macro_error_not_broken_sql() -> None:
    with pytest.raises(MacroError, match="missing time column"):
        expand("WHERE $__timeFilter()", CTX)
    with pytest.raises(MacroError, match="needs time column and interval"):
        expand("SELECT $__timeGroup(ts)", CTX)
    with pytest.raises(MacroError, match="parsing interval"):
        expand("SELECT $__timeGroup(ts, 'soon')", CTX)
    with pytest.raises(MacroError, match="unknown macro"):
        expand("SELECT $__nope(ts)", CTX)
    with pytest.raises(MacroError, match="not supported"):
        format_selection(Selection.single("a"), "regex")
    with pytest.raises(MacroError, match="no value"):
        format_selection(Selection.many([]), "sqlstring")
    with pytest.raises(ValueError, match="timezone-aware"):
        QueryContext(datetime(2024, 1, 1), TO)


@pytest.mark.parametrize(("text", "expected"), [
    ("20ms", timedelta(milliseconds=20)), ("5m", timedelta(minutes=5)), ("1h", timedelta(hours=1)),
    ("12d", timedelta(days=12)), ("1w", timedelta(weeks=1))])
def test_interval_syntax(text: str, expected: timedelta) -> None:
    assert parse_interval(text) == expected


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_a_whole_interval_formats_back_to_its_text(number: int, unit: str) -> None:
    interval = parse_interval(f"{number}{unit}")
    assert parse_interval(format_interval(interval)) <= interval  # the largest whole unit, never more
    if number < {"ms": 1000, "s": 60, "m": 60, "h": 24, "d": 365}[unit]:
        assert format_interval(interval) == f"{number}{unit}"


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1), min_size=1,
                max_size=5))
def test_sqlstring_is_always_a_list_of_closed_literals(values: list[str]) -> None:
    text = format_selection(Selection.many(values), "sqlstring")
    literals, i = [], 0
    while i < len(text):  # parse the SQL literal list back
        assert text[i] == "'"
        j, chars = i + 1, []
        while True:
            if text[j] == "'" and text[j + 1:j + 2] == "'":
                chars.append("'")
                j += 2
            elif text[j] == "'":
                break
            else:
                chars.append(text[j])
                j += 1
        literals.append("".join(chars))
        i = j + 2  # past the closing quote and the comma
    assert literals == values
