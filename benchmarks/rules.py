"""`cityops bench rules --damp | --bins`: how fast the rules run on this machine (pure computation).

    incremental   10,000 homes held in a RollingDamp (37 days of hourly rings, running
                  sums, mould state) get one new hour: screening, surface conditions, one
                  mould step, window sums; then every home's level, reasons and changes
    full          10,000 homes x 30 days of 5-minute readings from scratch: hourly roll-up,
                  screening, the mould index through every hour, levels and reasons; in
                  chunks of homes so memory stays bounded; time, and peak memory as the
                  process's peak resident set (it runs first, so the peak is its own)

    gritting      road surface temperature, treat/monitor/none with reasons and route decisions for
                  50,000 segments and 500 sensors (a synthetic city; best of three runs and the
                  median); the mean gap to the published optima over the CARP gdb set (--carp-dir,
                  default the repository's benchmarks/data/carp) at --carp-seconds each (default 10)

    bins          priorities for 20,000 bins (scoring with reasons, from forecasts), and the
                  forecast pipeline per bin on simulated bins; a 1,000-bin, 10-truck plan;
                  fixed round against dynamic collection over 8 simulated weeks;
                  the mean gap to the best-known values over the CVRPLIB A instances (--cvrp-dir,
                  default the repository's benchmarks/data/cvrp) at --cvrp-seconds each (default 10)

The database is not involved (see `cityops rules run --damp` for the end-to-end run);
synthetic homes come from simulation.synthetic.damp, a mix of damp, dry and in-between.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cityops.settings import Settings
from rules.bins import assess, insight, priority
from rules.bins.fill import BinCalibration
from rules.damp import mould, risk
from rules.damp.quality import HourlySeries
from rules.damp.risk import HomeInputs
from rules.damp.rolling import HourInput, RollingDamp
from rules.routing import cvrplib
from rules.routing.plan import Fleet, PlanBin, plan_collection
from simulation.bins import WEEKDAY_FACTOR, BinSpec
from simulation.synthetic import damp as synthetic
from simulation.synthetic.bins import simulate_bin

# The benchmark instances kept in the repository (benchmarks/data/README.md): found from this
# file, not the working directory, so the defaults work wherever the command is run from.
BENCH_DATA = Path(__file__).resolve().parent / "data"


def register_bench(which: argparse._SubParsersAction[Any]) -> None:
    bench = which.add_parser("rules", help="rules: damp recompute and hour; bin priorities, plans, CVRPLIB",
                             description="Rules benchmarks (pure computation, no database).")
    bench.add_argument("--damp", action="store_true", help="the damp and mould rules")
    bench.add_argument("--bins", action="store_true", help="bin priorities, a collection plan, CVRPLIB A gaps")
    bench.add_argument("--bin-count", type=int, default=20_000, help="bins to prioritise (default 20000)")
    bench.add_argument("--plan-bins", type=int, default=1_000, help="bins in the plan (default 1000)")
    bench.add_argument("--trucks", type=int, default=10, help="trucks in the plan (default 10)")
    bench.add_argument("--plan-seconds", type=float, default=55.0, help="the plan's time limit (default 55)")
    bench.add_argument("--cvrp-dir", type=Path, default=BENCH_DATA / "cvrp",
                       help="folder with A/*.vrp and bks.csv (default benchmarks/data/cvrp in the repository)")
    bench.add_argument("--cvrp-seconds", type=float, default=10.0, help="seconds per CVRPLIB instance (10)")
    bench.add_argument("--gritting", action="store_true",
                       help="gritting decisions on a synthetic city; CARP gdb gaps to the published optima")
    bench.add_argument("--segments", type=int, default=50_000, help="road segments for --gritting (default 50000)")
    bench.add_argument("--sensors", type=int, default=500, help="road sensors for --gritting (default 500)")
    bench.add_argument("--carp-dir", type=Path, default=BENCH_DATA / "carp",
                       help="folder with gdb/*.dat and carp_bks.csv (default benchmarks/data/carp in the repository)")
    bench.add_argument("--carp-seconds", type=float, default=10.0, help="seconds per CARP instance (10)")
    bench.add_argument("--homes", type=int, default=10_000, help="homes (default 10000)")
    bench.add_argument("--days", type=int, default=30, help="days of 5-minute data for the full run (30)")
    bench.add_argument("--chunk", type=int, default=1_000, help="homes per chunk in the full run (1000)")
    bench.set_defaults(handler=run_bench)


def climates(homes: int, seed: int = 0) -> list[synthetic.Climate]:
    rng = np.random.default_rng(seed)
    return [synthetic.Climate(indoor_c=float(t), indoor_rh=float(h), outdoor_c=float(o))
            for t, h, o in zip(rng.uniform(13, 23, homes), rng.uniform(35, 80, homes),
                               rng.uniform(-3, 12, homes), strict=True)]


def inputs_for(outdoor_hourly: np.ndarray) -> HomeInputs:
    homes = outdoor_hourly.shape[0]
    return HomeInputs(f_rsi=np.full(homes, 0.75),
                      classes=mould.ClassArrays.for_homes(mould.DEFAULT_SENSITIVITY, homes),
                      outdoor_c=outdoor_hourly)


def hourly_homes(homes: int, days: int, chunk: int = 1_000) -> HourlySeries:
    """Hourly series for many homes, generated a chunk at a time to keep memory down."""
    everyone = climates(homes)
    parts = [synthetic.hourly(*synthetic.five_minute_readings(everyone[i:i + chunk], days, seed=i)[:3])
             for i in range(0, homes, chunk)]
    names = ("air_temp", "rh", "rh_min", "rh_max", "readings")
    return HourlySeries(parts[0].hours, *(np.concatenate([getattr(p, n) for p in parts]) for n in names))


def time_incremental(homes: int) -> tuple[float, float, float, Counter[str]]:
    """Seconds for (one new hour into the rolling state, the assessments with reasons, the prefill)."""
    series = hourly_homes(homes, days=38)
    rolling = RollingDamp(np.full(homes, 0.75), mould.ClassArrays.for_homes(mould.DEFAULT_SENSITIVITY, homes))
    outdoor = np.full(homes, 5.0)

    began = time.perf_counter()
    for h in range(series.air_temp.shape[1] - 1):
        rolling.push_hour(HourInput.from_series(series, h, outdoor))
    prefill = time.perf_counter() - began
    began = time.perf_counter()
    rolling.push_hour(HourInput.from_series(series, series.air_temp.shape[1] - 1, outdoor))
    push = time.perf_counter() - began
    assessments = rolling.assessments()
    whole = time.perf_counter() - began
    return push, whole, prefill, Counter(a.level for a in assessments)


def time_full(homes: int, days: int, chunk: int) -> tuple[float, float, Counter[str]]:
    """(compute seconds, generation seconds, levels) for the full recompute."""
    levels: Counter[str] = Counter()
    compute = generate = 0.0
    everyone = climates(homes)
    for first in range(0, homes, chunk):
        began = time.perf_counter()
        part = everyone[first:first + chunk]
        times, temp, rh, outdoor = synthetic.five_minute_readings(part, days, seed=first)
        generate += time.perf_counter() - began
        began = time.perf_counter()
        series = synthetic.hourly(times, temp, rh)
        del temp, rh
        assessments, _ = risk.recompute(series, inputs_for(synthetic.hourly_outdoor(outdoor)))
        compute += time.perf_counter() - began
        levels.update(a.level for a in assessments)
        del series, outdoor, assessments
    return compute, generate, levels


async def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    if not (args.damp or args.bins or args.gritting):
        print("error: say which rules to benchmark: cityops bench rules --damp (or --bins, --gritting)")
        return 2
    if args.gritting:
        if min(args.segments, args.sensors) <= 0 or args.carp_seconds <= 0:
            print("error: --segments, --sensors and --carp-seconds must be positive")
            return 2
        bench_gritting(args)
    if args.bins:
        if min(args.bin_count, args.plan_bins, args.trucks) <= 0 or min(args.plan_seconds, args.cvrp_seconds) <= 0:
            print("error: --bin-count, --plan-bins, --trucks and the seconds must be positive")
            return 2
        bench_bins(args)
    if not args.damp:
        return 0
    if min(args.homes, args.days, args.chunk) <= 0:
        print("error: --homes, --days and --chunk must be positive")
        return 2
    before = _peak_rss_mib()
    compute, generate, levels = time_full(args.homes, args.days, args.chunk)
    samples = args.homes * args.days * 24 * 12
    print(f"damp full recompute, {args.homes} homes x {args.days} days of 5-minute data "
          f"({samples:,} readings, chunks of {args.chunk}): {compute:.2f} s compute "
          f"(+{generate:.2f} s generating the data), "
          f"peak memory (process RSS) {_peak_rss_mib():.0f} MiB, {before:.0f} MiB before it  "
          f"({_spread(levels)})")
    push, whole, prefill, levels = time_incremental(args.homes)
    print(f"damp incremental, {args.homes} homes, one new hour: rolling update {push * 1000:.0f} ms, "
          f"with levels, reasons and changes {whole:.3f} s  ({_spread(levels)}; "
          f"prefilling 37 days took {prefill:.1f} s; process peak RSS now {_peak_rss_mib():.0f} MiB)")
    return 0


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spread(levels: Counter[str]) -> str:
    return ", ".join(f"{name} {levels[name]}" for name in (*risk.LEVELS, risk.UNKNOWN) if levels[name])


def bench_bins(args: argparse.Namespace) -> None:
    scoring, mandatory = time_priorities(args.bin_count)
    print(f"bin priorities, {args.bin_count} bins: {scoring:.3f} s scoring with reasons ({mandatory} mandatory)")
    per_bin = time_forecasts(200)
    print(f"bin forecasts (fill, emptying, weekday profile, fit, events), 200 simulated bins x 28 days of "
          f"30-minute readings: {per_bin * 1000:.1f} ms per bin, so about {per_bin * args.bin_count:.0f} s "
          f"for {args.bin_count} bins")
    print(time_plan(args.plan_bins, args.trucks, args.plan_seconds))
    print(compare_policies(args.plan_bins))
    print(cvrp_gaps(args.cvrp_dir, args.cvrp_seconds))


def time_priorities(bins: int, seed: int = 0) -> tuple[float, int]:
    rng = np.random.default_rng(seed)
    hours = rng.exponential(60.0, bins)
    hours[rng.random(bins) < 0.02] = np.nan                # no recent readings
    inputs = priority.PriorityInputs(
        device_ids=[f"bin-{i:05d}" for i in range(bins)], hours_to_threshold=hours,
        overflow_risk=rng.beta(0.5, 2.0, bins), hours_to_next_pass=np.full(bins, 24.0),
        bin_type=rng.choice(np.array(["general", "recycling", "food"]), bins),
        place=rng.choice(np.array(["", "", "", "town_centre", "school"]), bins),
        complaints=rng.poisson(0.1, bins), outdoor_c=np.full(bins, 18.0),
        due_by_schedule=rng.random(bins) < 0.2, has_event=rng.random(bins) < 0.002)
    began = time.perf_counter()
    result = priority.score_bins(inputs)
    return time.perf_counter() - began, int(result.mandatory.sum())


def time_forecasts(bins: int) -> float:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    inputs = []
    for i in range(bins):
        spec = BinSpec(base_fill_per_day=0.1 + 0.3 * (i % 7) / 6, collection_weekday=i % 7)
        history = simulate_bin(spec, start, 28, seed=i)
        calibration = BinCalibration.for_sensor(spec.sensor_height_mm, spec.depth_mm, "jsn-sr04t")
        inputs.append(assess.BinInput(f"bin-{i}", calibration, history.times_h, history.distance_mm,
                                      np.full(history.times_h.size, np.nan), history.temp_c, history.tilt_deg))
    now = float(inputs[0].times_h[-1])
    began = time.perf_counter()
    assess.assess_all(inputs, now, now + 24.0, outdoor_c=8.0)
    return (time.perf_counter() - began) / bins


def time_plan(bins: int, trucks: int, seconds: float, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    stops = [PlanBin(f"bin-{i:04d}", -0.76 + rng.normal(0, 0.04), 52.04 + rng.normal(0, 0.025),
                     int(rng.integers(60, 240)), bool(rng.random() < 0.3), float(rng.uniform(0, 100)))
             for i in range(bins)]
    fleet = Fleet(-0.76, 52.04, trucks, 12_000, datetime(2026, 1, 6, 6, tzinfo=UTC), shift_h=8, break_min=30)
    began = time.perf_counter()
    plan = plan_collection(stops, fleet, seed=seed, time_limit_s=seconds, max_iterations=None)
    took = time.perf_counter() - began
    mandatory = sum(s.mandatory for s in stops)
    return (f"bin plan, {bins} bins ({mandatory} mandatory), {trucks} trucks of 12,000 l, 8 h shift with a 30 min "
            f"break: {took:.1f} s, {'feasible' if plan.feasible else 'NOT feasible'}, {len(plan.visited)} bins "
            f"collected, {plan.distance_m / 1000:.0f} km, {len(plan.missed_mandatory)} mandatory missed")


def compare_policies(bins: int, weeks: int = 8, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    fixed, dynamic = insight.simulate_policies(-0.76 + rng.normal(0, 0.04, bins), 52.04 + rng.normal(0, 0.025, bins),
                                               rng.uniform(0.05, 0.4, bins), rng.integers(0, 7, bins),
                                               (-0.76, 52.04), weekday_factor=WEEKDAY_FACTOR, weeks=weeks,
                                               seed=seed)
    return (f"collection policies, {bins} simulated bins over {weeks} weeks ({time.perf_counter() - began:.1f} s): "
            f"{fixed.line()}; {dynamic.line()}")


def cvrp_gaps(folder: Path, seconds: float) -> str:
    files = sorted((folder / "A").glob("A-n*.vrp")) if folder.is_dir() else []
    bks_file = folder / "bks.csv"
    if not files or not bks_file.is_file():
        return (f"CVRPLIB A: no instances under {folder}/A with {bks_file} (the repository keeps them in "
                "benchmarks/data/cvrp; pass --cvrp-dir)")
    best = cvrplib.read_bks(bks_file)
    gaps = []
    for path in files:
        instance = cvrplib.read_vrp(path)
        result = cvrplib.solve_cvrp(instance, time_limit_s=seconds, seed=0)
        gap = result.gap(best.get(instance.name))
        if gap is not None:
            gaps.append(gap)
        print(f"  {instance.name}: {result.cost} (best-known {best.get(instance.name)}, gap "
              f"{'n/a' if gap is None else f'{gap:+.2%}'})")
    return (f"CVRPLIB A, {len(gaps)} instances at {seconds:g} s each: mean gap {np.mean(gaps):+.3%}, "
            f"worst {max(gaps):+.2%}, {sum(g <= 0 for g in gaps)} at the best-known value")


def bench_gritting(args: argparse.Namespace) -> None:
    from cityops.settings import GrittingSettings
    from rules.gritting.assess import assess
    from simulation.synthetic import gritting as synthetic

    began = time.perf_counter()
    city = synthetic.city(args.segments, args.sensors)
    made = time.perf_counter() - began
    times, result = [], None
    for _ in range(3):
        began = time.perf_counter()
        result = assess(city.network, city.sensors, city.mobile, [], city.now, GrittingSettings())
        times.append(time.perf_counter() - began)
    assert result is not None
    counts = result.counts()
    decided = {d: sum(r.decision == d for r in result.routes) for d in ("send", "not_needed", "unknown")}
    print(f"gritting decisions, {len(city.network.segments)} segments, {len(city.sensors)} sensors, "
          f"{len(result.routes)} routes, a 12 h window at 30 min: {min(times):.2f} s best of 3 (median "
          f"{sorted(times)[1]:.2f} s; the first run {times[0]:.2f} s, which also builds the network's arrays and "
          f"spatial index, kept while the network is unchanged) for sensor checks, the energy-balance night model "
          f"with its bound, IDW with offsets, gritter snapping, decisions with reasons and route decisions  "
          f"(treat {counts['treat']}, monitor {counts['monitor']}, none {counts['none']}; routes: "
          f"{decided['send']} send, {decided['not_needed']} not needed, {decided['unknown']} unknown; "
          f"{len(result.inputs['sensors_dead'])} dead sensors; generating the city took {made:.1f} s)")
    print(carp_gdb(args.carp_dir, args.carp_seconds))


def carp_gdb(folder: Path, seconds: float) -> str:
    try:
        from benchmarks import carp as carp_bench
    except ImportError as exc:
        return f"CARP gdb: the arc-routing benchmark is not available yet ({exc})"
    if not (folder / "gdb").is_dir():
        return (f"CARP gdb: no instances under {folder}/gdb (the repository keeps them in "
                "benchmarks/data/carp; pass --carp-dir)")
    rows = carp_bench.gdb_gaps(folder, seconds, 1, print)
    return carp_bench.summary(rows, "gdb", seconds)
