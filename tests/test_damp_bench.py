"""The damp benchmark runs end to end on a small size and reports what it promises."""

import argparse
import re

import pytest

from benchmarks import rules as bench
from cityops.settings import Settings


async def test_bench_rules_damp_reports_times_memory_and_levels(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench.register_bench(parser.add_subparsers())
    args = parser.parse_args(["rules", "--damp", "--homes", "60", "--days", "3", "--chunk", "25"])
    assert await args.handler(args, Settings()) == 0
    out = capsys.readouterr().out
    full = re.search(r"full recompute, 60 homes x 3 days .*\(51,840 readings, chunks of 25\): ([\d.]+) s compute.*"
                     r"peak memory \(process RSS\) (\d+) MiB", out)
    incremental = re.search(r"incremental, 60 homes, one new hour: rolling update (\d+) ms, "
                            r"with levels, reasons and changes ([\d.]+) s", out)
    assert full and incremental, out
    assert float(incremental.group(2)) < 1.0


async def test_bench_without_damp_says_what_to_run(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench.register_bench(parser.add_subparsers())
    args = parser.parse_args(["rules"])
    assert await args.handler(args, Settings()) == 2
    assert "cityops bench rules --damp" in capsys.readouterr().out
