"""Independent, reproducible random streams: one per (seed, what, index, ...)."""

from __future__ import annotations

import hashlib
import random


def rng_for(*parts: object) -> random.Random:
    """A generator seeded from a hash of the parts: the same parts give the same stream on
    every run and machine (no PYTHONHASHSEED), different parts give unrelated streams."""
    key = "/".join(str(part) for part in parts).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
