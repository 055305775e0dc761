"""The demo's winter week in time: when it starts, its weather, and how fast it runs (pure).

The week ends at `live_from`, the last 18:00 UTC at or before the real start, so that the
freezing night is always still to come; it starts `days` before. The simulator computes the
week up to `live_from` as fast as the machine allows (each device's backlog), then goes on
live at `speed` simulated seconds per real second, but never ahead of the real clock:
ingest refuses readings from the future, so simulated time catches up with real time and
then follows it.

The weather (a scripted version of simulation.weather.Weather): a mild, wet start
to the week (the damp homes suffer), a drier cooling middle, rain on the last afternoon,
then a clear, freezing night (air to about -4 degC, bridges and shaded roads colder), and
a thaw the next day.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from simulation.weather import Weather, hour_of_day

EVENING_HOUR = 18
# (hours from live_from, daily mean air temperature degC): linear in between
MEAN_C = ((-24 * 8, 7.0), (-120, 8.0), (-96, 6.0), (-72, 5.0), (-48, 4.0), (-24, 3.0), (0, 1.0), (12, -2.0),
          (24, 2.0), (48, 5.0))
# rain spells (from h, to h, mm/h): the wet day mid-week, a shower, rain on the last afternoon
RAIN = ((-124.0, -110.0, 1.5), (-80.0, -77.0, 0.5), (-6.0, -2.0, 1.0))
CLEAR_NIGHT = (-2.0, 14.0)        # the freezing night: the sky clears as the rain stops
DAILY_AMPLITUDE_C = 3.5


@dataclass(frozen=True)
class Timeline:
    start: datetime            # the simulated week begins
    live_from: datetime        # catching up ends here: the evening before the freezing night
    real_start: datetime       # when the demo started (simulated time never passes the real clock)

    @property
    def registered_at(self) -> datetime:
        """When the demo's devices count as registered: before their first reading."""
        return self.start - timedelta(hours=1)

    @property
    def days(self) -> float:
        return (self.live_from - self.start) / timedelta(days=1)

    @classmethod
    def ending_before(cls, now: datetime, days: float = 7.0) -> Timeline:
        now = now.astimezone(UTC).replace(second=0, microsecond=0)
        evening = now.replace(hour=EVENING_HOUR, minute=0)
        live_from = evening if evening <= now else evening - timedelta(days=1)
        return cls(live_from - timedelta(days=days), live_from, now)


def _interpolate(points: tuple[tuple[float, float], ...], h: float) -> float:
    xs = [p[0] for p in points]
    if h <= xs[0]:
        return points[0][1]
    if h >= xs[-1]:
        return points[-1][1]
    k = bisect.bisect_right(xs, h)
    (x0, y0), (x1, y1) = points[k - 1], points[k]
    return y0 + (y1 - y0) * (h - x0) / (x1 - x0)


@dataclass(frozen=True)
class StoryWeather(Weather):
    """The week's weather as pure functions of time, anchored at the timeline's `live_from`."""

    anchor: datetime = datetime(2026, 1, 5, EVENING_HOUR, tzinfo=UTC)

    @classmethod
    def for_timeline(cls, timeline: Timeline) -> StoryWeather:
        return cls(mean_c=0.0, daily_amplitude_c=DAILY_AMPLITUDE_C, systems=(), rain_waves=(), rain_threshold=1.0,
                   anchor=timeline.live_from)

    def _h(self, ts: datetime) -> float:
        return (ts - self.anchor).total_seconds() / 3600.0

    def air_temp_c(self, ts: datetime) -> float:
        daily = -math.cos(2 * math.pi * (hour_of_day(ts) - 3.0) / 24.0)
        return _interpolate(MEAN_C, self._h(ts)) + self.daily_amplitude_c * daily

    def rain_mm_h(self, ts: datetime) -> float:
        h = self._h(ts)
        return next((rate for start, end, rate in RAIN if start <= h < end), 0.0)

    def sky_clearness(self, ts: datetime) -> float:
        h = self._h(ts)
        if self.rain_mm_h(ts) > 0:
            return 0.0
        if CLEAR_NIGHT[0] <= h < CLEAR_NIGHT[1]:
            return 0.9
        return 0.4

    def outdoor_rh_pct(self, ts: datetime) -> float:
        return 95.0 if self.rain_mm_h(ts) > 0 else 80.0 + 8.0 * self.sky_clearness(ts)


class Pace:
    """Shared by every simulated device in a process: when the live phase started, how fast.

    From `live_from`, simulated time runs at `speed` simulated seconds per real second,
    counted from the real instant `go_live` is called, and never ahead of the real clock."""

    def __init__(self, timeline: Timeline, speed: float):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.timeline = timeline
        self.speed = speed
        self.live_real: float | None = None      # monotonic time the live phase started

    def go_live(self) -> None:
        self.live_real = time.monotonic()

    def sim_now(self) -> datetime:
        """Where simulated time is now (live_from until the live phase starts)."""
        if self.live_real is None:
            return self.timeline.live_from
        ahead = timedelta(seconds=(time.monotonic() - self.live_real) * self.speed)
        return min(self.timeline.live_from + ahead, datetime.now(UTC))


class StoryClock:
    """One device's clock (firmware.clock.Clock), discrete so readings' times are exact.

    While the week's backlog is computed, `set` moves it; in the live phase `sleep_until`
    waits for the simulated instant at the pace's speed, capped at the real clock."""

    def __init__(self, pace: Pace):
        self.pace = pace
        self.start = pace.timeline.start
        self._now = self.start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def synced(self) -> bool:
        return True

    async def sleep_until(self, when: datetime) -> None:
        live_real = self.pace.live_real
        assert live_real is not None, "the live phase has not started"
        due = live_real + (when - self.pace.timeline.live_from).total_seconds() / self.pace.speed
        wall = (when - datetime.now(UTC)).total_seconds()
        await asyncio.sleep(max(0.0, due - time.monotonic(), wall))
        self._now = max(self._now, when)
