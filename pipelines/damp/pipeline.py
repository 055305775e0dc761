"""The damp pipeline: frog readings in, assessments out (rules.damp decides, pure).

One run reads through the store (pipelines.damp.store), for every active frog box, the
hourly statistics of the last `lookback` days, the outdoor temperatures of fixed road/air
sensors, each home's settings and mould state; advances the mould state through the hours
it has not seen yet; and writes through the store one assessment per box (keyed by the hour
the data runs to, stamped with the time it was computed) and the new state, in one
transaction. Running it twice
for the same hour changes nothing but `computed_at`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from cityops.storage import Database
from pipelines.damp import store
from pipelines.errors import NoCompleteHour, NoFrogBox
from rules.damp import diary, mould, surface
from rules.damp.council import HomeRisk, rank_homes
from rules.damp.diary import Activity, DiaryAnalysis, DiaryEntry, as_utc_minute
from rules.damp.quality import HourlySeries, screen
from rules.damp.report import EvidenceInput, daily_levels
from rules.damp.risk import WEEK_H, Assessment, HomeInputs, assess, surface_series

log = logging.getLogger("pipelines.damp.pipeline")

HOUR = timedelta(hours=1)
FUTURE_TOLERANCE = timedelta(minutes=10)


@dataclass(frozen=True)
class DampRunSettings:
    lookback: timedelta = timedelta(days=37)      # 30-day means, and the week before for "what changed"
    outdoor_max_distance_m: float = 5_000.0
    outdoor_fallback_c: float = 5.0
    recompute: bool = False                        # ignore stored mould state and replay the lookback


@dataclass
class RunReport:
    data_until: datetime
    assessed: int
    levels: Counter[str] = field(default_factory=Counter)
    hours_applied: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        spread = ", ".join(f"{name} {count}" for name, count in sorted(self.levels.items()))
        return (f"damp: assessed {self.assessed} frog boxes, data to {self.data_until:%Y-%m-%d %H:%M} UTC "
                f"({spread or 'none'}); {self.hours_applied} new hours applied in {self.seconds:.2f} s")


@dataclass(frozen=True)
class Box:
    device_id: str
    household_id: str | None
    lon: float
    lat: float
    f_rsi: float
    sensitivity: mould.Sensitivity
    fallback_c: float


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def run_damp(db: Database, now: datetime | None = None,
                   settings: DampRunSettings | None = None) -> RunReport:
    """Assess every active frog box once, with data up to the last complete hour before `now`."""
    settings = settings or DampRunSettings()
    began = time.perf_counter()
    now = now or datetime.now(UTC)
    end = hour_floor(now)
    start = end - settings.lookback
    boxes = await _boxes(db, settings)
    report = RunReport(data_until=end, assessed=len(boxes))
    if not boxes:
        return report
    ids = [box.device_id for box in boxes]
    hours = np.arange(_hour64(start), _hour64(end))
    series = await _frog_series(db, ids, start, end, hours)
    inputs = await _home_inputs(db, boxes, start, end, hours, settings)
    future = await _future_readings(db, ids, now)

    quality = screen(series, future)
    cold = surface_series(series, inputs, quality)
    state, first_new = await _mould_state(db, boxes, hours, settings.recompute)
    week_ago_column = len(hours) - WEEK_H - 1
    week_ago = await _stored_index(db, ids, end - timedelta(days=7))
    for column in range(int(first_new.min()), len(hours)):
        fresh = first_new <= column
        state = mould.step_hour(state, np.where(fresh, cold.temp_c[:, column], np.nan),
                                np.where(fresh, cold.rh_pct[:, column], np.nan), inputs.classes)
        if column == week_ago_column:
            week_ago = np.where(fresh & np.isnan(week_ago), state.index, week_ago)
        report.hours_applied += int(fresh.sum())
    assessments = assess(series, inputs, quality, cold, state.index, week_ago)
    await _write(db, boxes, assessments, state, end, hours[-1])
    report.levels.update(a.level for a in assessments)
    report.seconds = time.perf_counter() - began
    log.info("%s", report.summary())
    return report


async def _boxes(db: Database, settings: DampRunSettings) -> list[Box]:
    rows = await store.frog_boxes(db)
    return [Box(device_id=r["device_id"], household_id=r["household_id"],
                lon=r["lon"] if r["lon"] is not None else np.nan,
                lat=r["lat"] if r["lat"] is not None else np.nan,
                f_rsi=r["f_rsi"] if r["f_rsi"] is not None else surface.DEFAULT_F_RSI,
                sensitivity=mould.sensitivity(r["sensitivity"] or mould.DEFAULT_SENSITIVITY.value),
                fallback_c=(r["outdoor_fallback_c"] if r["outdoor_fallback_c"] is not None
                            else settings.outdoor_fallback_c))
            for r in rows]


def _hour64(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "h")


def _column(bucket: datetime, first: np.datetime64) -> int:
    return int((_hour64(bucket) - first).astype(int))


async def _frog_series(db: Database, ids: list[str], start: datetime, end: datetime,
                       hours: npt.NDArray[np.datetime64]) -> HourlySeries:
    row_of = {device: i for i, device in enumerate(ids)}
    shape = (len(ids), len(hours))
    arrays = {name: np.full(shape, np.nan) for name in ("air_temp_avg", "rh_avg", "rh_min", "rh_max")}
    readings = np.zeros(shape, dtype=np.int64)
    for stat in await store.hourly(db, "frog", start, end, ids):
        row, col = row_of[stat.device_id], _column(stat.bucket, hours[0])
        readings[row, col] = stat.readings
        for name, values in arrays.items():
            value = stat.values[name]
            values[row, col] = np.nan if value is None else float(value)
    return HourlySeries(hours=hours, air_temp=arrays["air_temp_avg"], rh=arrays["rh_avg"],
                        rh_min=arrays["rh_min"], rh_max=arrays["rh_max"], readings=readings)


async def _home_inputs(db: Database, boxes: list[Box], start: datetime, end: datetime,
                       hours: npt.NDArray[np.datetime64], settings: DampRunSettings) -> HomeInputs:
    sensors = await store.outdoor_sensors(db)
    sensor_ids = [r["device_id"] for r in sensors]
    nearest = surface.nearest_outdoor_sensors(
        [b.lon for b in boxes], [b.lat for b in boxes],
        [r["lon"] for r in sensors], [r["lat"] for r in sensors], settings.outdoor_max_distance_m)
    series = np.full((len(sensor_ids), len(hours)), np.nan)
    wanted = sorted({sensor_ids[i] for i in nearest.index if i >= 0})
    if wanted:
        row_of = {device: i for i, device in enumerate(sensor_ids)}
        for stat in await store.hourly(db, "road", start, end, wanted):
            value = stat.values["air_temp_avg"]
            if value is not None:
                series[row_of[stat.device_id], _column(stat.bucket, hours[0])] = float(value)
    fallback = np.array([b.fallback_c for b in boxes])
    outdoor, assumed = surface.outdoor_series(nearest, series, fallback)
    return HomeInputs(f_rsi=surface.check_f_rsi([b.f_rsi for b in boxes]),
                      classes=mould.ClassArrays.for_homes([b.sensitivity for b in boxes]),
                      outdoor_c=outdoor,
                      fallback_note=surface.fallback_notes(nearest, assumed, fallback,
                                                           settings.outdoor_max_distance_m))


async def _future_readings(db: Database, ids: list[str], now: datetime) -> npt.NDArray[np.int64]:
    counts = await store.readings_after(db, ids, now + FUTURE_TOLERANCE)
    return np.array([counts.get(device, 0) for device in ids], dtype=np.int64)


async def _mould_state(db: Database, boxes: list[Box], hours: npt.NDArray[np.datetime64],
                       recompute: bool) -> tuple[mould.MouldState, npt.NDArray[np.int64]]:
    """The stored state per box and, per box, the first window column it has not seen."""
    state = mould.MouldState.zeros(len(boxes))
    first_new = np.zeros(len(boxes), dtype=np.int64)
    if recompute:
        return state, first_new
    stored = await store.mould_states(db, [b.device_id for b in boxes])
    for i, box in enumerate(boxes):
        row = stored.get(box.device_id)
        if row is None:
            continue
        state.index[i] = row["mould_index"]
        state.dry_hours[i] = row["dry_hours"]
        first_new[i] = max(_column(row["through_hour"], hours[0]) + 1, 0)
    return state, first_new


async def _stored_index(db: Database, ids: list[str], at: datetime) -> npt.NDArray[np.float64]:
    """Each box's mould index in its last assessment at or before `at` (NaN when there is none)."""
    found = await store.mould_index_at(db, ids, at)
    return np.array([found.get(device, np.nan) for device in ids], dtype=np.float64)


async def _write(db: Database, boxes: list[Box], assessments: list[Assessment], state: mould.MouldState,
                 end: datetime, last_hour: np.datetime64) -> None:
    through = datetime.fromisoformat(str(last_hour.astype("datetime64[s]"))).replace(tzinfo=UTC)
    await store.save_assessments(db, [b.device_id for b in boxes], [b.household_id for b in boxes], assessments,
                                 end, state.index.tolist(), state.dry_hours.tolist(), through,
                                 [b.sensitivity.value for b in boxes])


async def latest_home_risks(db: Database) -> list[HomeRisk]:
    """Each household's latest risk (its worst box), with its area, for the council's views."""
    rows = await store.latest_assessments_with_area(db)
    worst: dict[str, HomeRisk] = {}
    for r in rows:
        home = HomeRisk(r["household_id"], r["area"], r["level"], float(r["mould_index"]), int(r["damp_hours_7d"]))
        current = worst.get(home.household_id)
        if current is None or rank_homes([home, current])[0].home is home:
            worst[home.household_id] = home
    return list(worst.values())


async def load_evidence(db: Database, household_id: str, start: datetime, end: datetime,
                        reported_on: date | None = None, settings: DampRunSettings | None = None,
                        not_before: datetime | None = None) -> EvidenceInput:
    """The evidence report's data for a household's box over [start, end), with 30 days' warm-up;
    nothing before `not_before` is read (a tenancy's start: whole hours from then on)."""
    settings = settings or DampRunSettings()
    boxes = [b for b in await _boxes(db, settings) if b.household_id == household_id]
    if not boxes:
        raise NoFrogBox(household_id)
    box = boxes[0]
    warm_start = hour_floor(start) - timedelta(days=30)
    end = hour_floor(end)
    if not_before is not None:
        first = hour_floor(not_before) + (timedelta(0) if not_before == hour_floor(not_before) else HOUR)
        warm_start, start = max(warm_start, first), max(start, first)
        if end <= start:
            raise NoCompleteHour("no complete hour of readings in this period yet")
    hours = np.arange(_hour64(warm_start), _hour64(end))
    series = await _frog_series(db, [box.device_id], warm_start, end, hours)
    inputs = await _home_inputs(db, [box], warm_start, end, hours, settings)
    quality = screen(series)
    cold = surface_series(series, inputs, quality)
    _, history = mould.run_hours(mould.MouldState.zeros(1), cold.temp_c, cold.rh_pct, inputs.classes,
                                 keep_history=True)
    assert history is not None
    latest = assess(series, inputs, quality, cold, history[:, -1].astype(np.float64))[0]
    period = hours >= _hour64(start)
    days = daily_levels(series, inputs)
    social = await store.social_landlord(db, household_id)
    return EvidenceInput(
        home_label=f"Household {household_id} (frog box {box.device_id})", hours=hours[period],
        indoor_t=series.air_temp[0, period], indoor_rh=series.rh[0, period],
        surface_rh=cold.rh_pct[0, period].astype(np.float64), mould_index=history[0, period].astype(np.float64),
        daily_levels=[(day, level) for day, level in days if day >= start.date()], latest=latest,
        generated_at=datetime.now(UTC), reported_on=reported_on, social_landlord=bool(social))


async def add_diary_entry(db: Database, household_id: str, entry: DiaryEntry) -> None:
    """Keep one diary entry for a household."""
    at = datetime.fromisoformat(str(entry.at)).replace(tzinfo=UTC)
    await store.add_diary_entry(db, household_id, at, entry.activity.value, entry.minutes)


async def diary_analysis(db: Database, household_id: str, start: datetime, end: datetime) -> DiaryAnalysis:
    """The household's diary over [start, end) against its box's 5-minute readings."""
    box = await store.household_box(db, household_id)
    if box is None:
        raise NoFrogBox(household_id)
    readings = await store.frog_readings(db, box, start, end)
    logged = await store.diary_activities(db, household_id, start - HOUR, end)
    first = np.datetime64(hour_floor(start).replace(tzinfo=None), "m")
    times = first + np.arange(int((end - hour_floor(start)) / diary.SAMPLE.astype(timedelta))) * diary.SAMPLE
    temp = np.full(times.size, np.nan)
    rh = np.full(times.size, np.nan)
    for row in readings:  # onto the 5-minute grid; a late duplicate in the same slot wins
        slot = int((as_utc_minute(row["ts"]) - first) // diary.SAMPLE)
        if 0 <= slot < times.size:
            temp[slot], rh[slot] = row["air_temp_c"], row["rh_pct"]
    entries = [DiaryEntry(as_utc_minute(r["ts"]), Activity(r["activity"]), r["minutes"]) for r in logged]
    return diary.analyse(times, temp, rh, entries)
