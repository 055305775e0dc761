"""Ingest's limits on what comes in (pure: no I/O, no clock of its own).

    MAX_PAYLOAD_BYTES       a telemetry message bigger than this is refused undecoded (the
                            broker's max_packet_size is the same 256 KiB, so this is the
                            second fence, for brokers configured otherwise)
    MAX_STORED_PAYLOAD      a dead letter keeps at most this much of the payload, with the
                            full length and its sha256 in the reason
    DeviceRate              messages per device: a token bucket (rate, burst); a message
                            over it is refused as a dead letter and counted

Readings per message and string lengths are the contract's (contract.telemetry).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

MAX_PAYLOAD_BYTES = 262_144
MAX_STORED_PAYLOAD = 4_096
MAX_TRACKED_DEVICES = 200_000  # the rate limiter forgets the least recently seen beyond this


def stored_payload(payload: bytes, reason: str) -> tuple[bytes, str]:
    """What a dead letter keeps of a payload: all of a small one; the head of a big one, and a
    reason that says how big it was and its sha256 (to match it against a device's spool)."""
    if len(payload) <= MAX_STORED_PAYLOAD:
        return payload, reason
    digest = hashlib.sha256(payload).hexdigest()
    return payload[:MAX_STORED_PAYLOAD], (f"{reason} [payload {len(payload)} bytes, sha256 {digest}; "
                                          f"first {MAX_STORED_PAYLOAD} kept]")


def size_problem(payload: bytes, limit: int = MAX_PAYLOAD_BYTES) -> str | None:
    if len(payload) > limit:
        return f"payload of {len(payload)} bytes is over the limit of {limit}"
    return None


@dataclass
class _Bucket:
    tokens: float
    at: float


class DeviceRate:
    """Per-device token buckets: `rate` messages a second on average, `burst` at once.
    rate 0 turns the limit off. Memory is bounded by MAX_TRACKED_DEVICES."""

    def __init__(self, rate: float, burst: int, max_devices: int = MAX_TRACKED_DEVICES):
        self.rate, self.burst, self.max_devices = rate, float(burst), max_devices
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, device: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        bucket = self._buckets.pop(device, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        self._buckets[device] = bucket  # most recently seen last
        if len(self._buckets) > self.max_devices:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def problem(self) -> str:
        return f"rate limit: more than {self.rate:g} messages/s (burst {self.burst:g}) from this device"


def device_of(topic: str) -> str:
    """The device id segment of cityops/v1/devices/<id>/telemetry (any string for others)."""
    parts = topic.split("/", 4)
    return parts[3] if len(parts) > 3 else topic
