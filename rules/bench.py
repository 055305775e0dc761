"""`cityops bench rules --damp`: how fast the damp rules run on this machine (pure computation).

    incremental   10,000 homes held in a RollingDamp (37 days of hourly rings, running
                  sums, mould state) get one new hour: screening, surface conditions, one
                  mould step, window sums; then every home's level, reasons and changes
    full          10,000 homes x 30 days of 5-minute readings from scratch: hourly roll-up,
                  screening, the mould index through every hour, levels and reasons; in
                  chunks of homes so memory stays bounded; time, and peak memory as the
                  process's peak resident set (it runs first, so the peak is its own)

The database is not involved (see `cityops rules run --damp` for the end-to-end run);
synthetic homes come from rules.damp.synthetic, a mix of damp, dry and in-between.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import Counter
from typing import Any

import numpy as np

from cityops.settings import Settings
from rules.damp import mould, risk, synthetic
from rules.damp.quality import HourlySeries
from rules.damp.risk import HomeInputs
from rules.damp.rolling import HourInput, RollingDamp


def register_bench(which: argparse._SubParsersAction[Any]) -> None:
    bench = which.add_parser("rules", help="rules: damp incremental hour and full 30-day recompute",
                             description="Rules benchmarks (pure computation, no database).")
    bench.add_argument("--damp", action="store_true", help="the damp and mould rules")
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
    if not args.damp:
        print("error: say which rules to benchmark: cityops bench rules --damp")
        return 2
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
