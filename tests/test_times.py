"""One way to read a time (cityops/times.py): ISO 8601 in UTC; data must carry its offset."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from cityops.times import parse_utc, utc_argument


@pytest.mark.parametrize("text", ["2026-01-05T03:00:00Z", "2026-01-05T03:00Z", "2026-01-05T03:00:00+00:00",
                                  "2026-01-05T04:00:00+01:00", "2026-01-04T22:00:00-05:00"])
def test_every_way_of_writing_the_same_instant_is_that_instant_in_utc(text: str) -> None:
    moment = parse_utc(text)
    assert moment == datetime(2026, 1, 5, 3, tzinfo=UTC) and moment.tzinfo == UTC


def test_data_without_an_offset_is_refused_and_an_argument_without_one_means_utc() -> None:
    with pytest.raises(ValueError, match="has no UTC offset"):
        parse_utc("2026-01-05T03:00:00")
    assert utc_argument("2026-01-05T03:00") == datetime(2026, 1, 5, 3, tzinfo=UTC)
    with pytest.raises(ValueError, match="is not an ISO 8601 time"):
        parse_utc("tomorrow at three")
    with pytest.raises(argparse.ArgumentTypeError, match="is not an ISO 8601 time"):
        utc_argument("05/01/2026")
