"""Download limits for a fleet: one token bucket of bytes per second shared by every
download, and a cap on downloads at once, at most one of them per device. A device over the
cap, or asking again while its own download runs, is told when to come back (429 +
Retry-After) instead of queueing on the server; the bucket paces the bytes of those admitted,
so a cohort of a thousand does not saturate the council's uplink. A slot whose client takes
no bytes for `idle_timeout_s` is taken back (the stream checks `Slot.revoked` and stops), so
neither a stalled device nor a greedy one can hold the fleet's slots."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float  # bytes per second
    burst: float  # bytes that may go at once
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _at: float = field(init=False)
    _lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._tokens, self._at = self.burst, self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait_time(self, amount: float) -> float:
        """Seconds until `amount` tokens are there (0 if now); does not take them."""
        self._refill()
        return max(0.0, (min(amount, self.burst) - self._tokens) / self.rate)

    async def take(self, amount: int) -> None:
        """Wait for and take `amount` tokens (in burst-sized pieces, fairly: one waiter at a time)."""
        left = float(amount)
        async with self._lock:
            while left > 0:
                piece = min(left, self.burst)
                delay = self.wait_time(piece)
                if delay > 0:
                    await asyncio.sleep(delay)
                    self._refill()
                self._tokens -= piece
                left -= piece


@dataclass
class Slot:
    device_id: str
    last_progress: float
    revoked: bool = False


@dataclass
class DownloadLimits:
    bucket: TokenBucket
    max_concurrent: int
    idle_timeout_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _slots: dict[str, Slot] = field(default_factory=dict)

    @property
    def active(self) -> int:
        return len(self._slots)

    def try_acquire(self, device_id: str) -> Slot | None:
        """A slot for this device; None when it holds one already or all are taken."""
        now = self.clock()
        for idle in [s for s in self._slots.values() if now - s.last_progress > self.idle_timeout_s]:
            idle.revoked = True
            del self._slots[idle.device_id]
        if device_id in self._slots or len(self._slots) >= self.max_concurrent:
            return None
        slot = self._slots[device_id] = Slot(device_id, now)
        return slot

    def progress(self, slot: Slot) -> None:
        slot.last_progress = self.clock()

    def release(self, slot: Slot) -> None:
        if self._slots.get(slot.device_id) is slot:
            del self._slots[slot.device_id]

    def retry_after_s(self, size: int) -> int:
        """When a slot frees up, on average: the downloads share the rate, so one finishes every
        size / rate seconds."""
        return min(3600, max(1, math.ceil(size / self.bucket.rate)))
