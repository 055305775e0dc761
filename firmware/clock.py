"""Time for the agent: the real UTC clock (and whether NTP has set it), or a simulated one.

A Pi has no real-time clock: until NTP synchronises, it boots with a guessed time
(fake-hwclock). Readings taken then are stamped anyway and flagged `unsynced`.
"""

from __future__ import annotations

import asyncio
import ctypes
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

_TIME_ERROR = 5  # adjtimex() state when the kernel clock is not synchronised


class Clock(Protocol):
    def now(self) -> datetime: ...

    def synced(self) -> bool: ...

    async def sleep_until(self, when: datetime) -> None: ...


def kernel_clock_synced() -> bool:
    """adjtimex(2) with modes=0 only reads; TIME_ERROR means "not synchronised" (STA_UNSYNC)."""
    if not sys.platform.startswith("linux"):
        return True
    timex = ctypes.create_string_buffer(512)  # larger than struct timex; zeroed: modes = 0
    state = ctypes.CDLL(None, use_errno=True).adjtimex(timex)
    return bool(state >= 0 and state != _TIME_ERROR)


class SystemClock:
    def __init__(self, recheck_s: float = 60.0):
        self._recheck_s = recheck_s
        self._checked_at = -recheck_s
        self._synced = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def synced(self) -> bool:
        if not self._synced and time.monotonic() - self._checked_at >= self._recheck_s:
            self._checked_at = time.monotonic()
            self._synced = kernel_clock_synced()  # once synced, it stays so (as ntpd keeps it)
        return self._synced

    async def sleep_until(self, when: datetime) -> None:
        await asyncio.sleep(max(0.0, (when - self.now()).total_seconds()))


class SimClock:
    """Discrete simulated time: `now()` is the instant last slept until, so everything
    computed from it is deterministic; it runs `speed` times faster than real time."""

    def __init__(self, start: datetime, speed: float = 1.0):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self._now = start
        self._real_start = time.monotonic()

    def now(self) -> datetime:
        return self._now

    def synced(self) -> bool:
        return True

    def elapsed(self) -> timedelta:
        return self._now - self.start

    async def sleep_until(self, when: datetime) -> None:
        real_due = self._real_start + (when - self.start).total_seconds() / self.speed
        await asyncio.sleep(max(0.0, real_due - time.monotonic()))
        self._now = max(self._now, when)
