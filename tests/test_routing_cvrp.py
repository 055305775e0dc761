"""CVRPLIB files: parsing, bad files, and a small A instance solved near its optimum."""

import argparse
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import route as cli
from rules.errors import InvalidInstance, RoutingError
from rules.routing.cvrplib import best_known, read_bks, read_vrp, solve_cvrp

DATA = Path(__file__).parent / "data" / "cvrp"


def test_reads_an_a_instance_with_its_quirks() -> None:
    instance = read_vrp(DATA / "A-n32-k5.vrp")      # trailing spaces on header and section lines
    assert (instance.name, instance.capacity, len(instance.demands)) == ("A-n32-k5", 100, 32)
    assert instance.demands[0] == 0 and instance.coords[0].tolist() == [82.0, 76.0]
    assert instance.value_in_comment == 784
    assert read_bks(DATA / "bks.csv") == {"A-n32-k5": 784, "A-n33-k5": 661}
    assert instance.distances()[0, 1] == 35                    # nint(sqrt(14^2 + 32^2)) = nint(34.93)


def test_a_small_instance_is_solved_feasibly_and_never_below_its_proven_optimum() -> None:
    """Correctness only; how close the solver gets is measured by `cityops bench rules --bins`
    (every CVRPLIB set A instance against its published optimum, README "Benchmarks")."""
    instance = read_vrp(DATA / "A-n33-k5.vrp")
    result = solve_cvrp(instance, time_limit_s=1.0, seed=1)
    best = best_known(instance, DATA / "A-n33-k5.vrp")
    assert best == 661 and result.feasible  # 661: the proven optimum (CVRPLIB, Augerat et al. 1995)
    gap = result.gap(best)
    assert gap is not None and gap >= 0.0  # a cost below a proven optimum would be a costing bug


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("DIMENSION : 32", "DIMENSION : 33"), "DIMENSION is 33 but there are 32"),
    (lambda t: t.replace("CAPACITY : 100", "CAPACITY : 10"), "exceeds the capacity 10"),
    (lambda t: t.replace("EUC_2D", "GEO"), "only EUC_2D"),
    (lambda t: t.replace("CAPACITY : 100\n", ""), "no CAPACITY line"),
    (lambda t: t.replace("2 19", "2 x"), "malformed number"),
])
def test_bad_files_get_clear_messages(tmp_path: Path, edit: Callable[[str], str], message: str) -> None:
    bad = tmp_path / "bad.vrp"
    bad.write_text(edit((DATA / "A-n32-k5.vrp").read_text()))
    with pytest.raises(InvalidInstance, match=message):
        read_vrp(bad)
    with pytest.raises(InvalidInstance, match="cannot read"):
        read_vrp(tmp_path / "missing.vrp")


def test_a_time_limit_must_be_positive() -> None:
    with pytest.raises(RoutingError, match="time limit must be positive"):
        solve_cvrp(read_vrp(DATA / "A-n32-k5.vrp"), time_limit_s=0)


async def test_route_cvrp_prints_the_cost_and_the_gap(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["route", "cvrp", str(DATA / "A-n32-k5.vrp"), "--time-limit", "2", "--seed", "3"])
    assert await args.handler(args, None) == 0
    out = capsys.readouterr().out
    found = re.search(r"A-n32-k5: cost (\d+) with \d+ routes \(feasible, .* seed 3\)\nbest-known 784: gap \+(\S+)%",
                      out)
    assert found, out
    assert 784 <= int(found.group(1)) <= 792 and float(found.group(2)) <= 1.0
