"""Download limits for a fleet: one token bucket of bytes per second shared by every
download, and a cap on downloads at once. A device over the cap is told when to come back
(429 + Retry-After) instead of queueing on the server; the bucket paces the bytes of those
admitted, so a cohort of a thousand does not saturate the council's uplink."""

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
class DownloadLimits:
    bucket: TokenBucket
    max_concurrent: int
    active: int = 0

    def try_acquire(self) -> bool:
        if self.active >= self.max_concurrent:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active = max(0, self.active - 1)

    def retry_after_s(self, size: int) -> int:
        """When a slot frees up, on average: the downloads share the rate, so one finishes every
        size / rate seconds."""
        return min(3600, max(1, math.ceil(size / self.bucket.rate)))
