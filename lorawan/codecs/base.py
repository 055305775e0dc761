"""What every codec returns, and the shape a codec has.

A codec is a pure function from (f_port, bytes) to readings, plus the downlink that sets
the device's reporting interval. It raises `CodecError(reason)` for anything it cannot
turn into readings; the caller turns that into a dead letter.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec

from lorawan.errors import CodecError

if TYPE_CHECKING:
    from lorawan.codecs.mapping import FieldMapping

Kind = Literal["frog", "road", "bin"]

# The reading fields of each device kind (the platform's readings tables), and the ones a
# measurement needs: all of them for a frog, at least one temperature for a road probe.
READING_FIELDS: dict[str, frozenset[str]] = {
    "frog": frozenset({"air_temp_c", "rh_pct"}),
    "road": frozenset({"surface_temp_c", "air_temp_c", "rh_pct"}),
    "bin": frozenset({"distance_mm", "temp_c", "tilt_deg"}),
}


def has_required(kind: str, fields: set[str] | frozenset[str]) -> bool:
    """Whether `fields` are enough for a measurement of `kind`."""
    if kind == "frog":
        return {"air_temp_c", "rh_pct"} <= fields
    if kind == "road":
        return bool({"surface_temp_c", "air_temp_c"} & fields)
    return "distance_mm" in fields


class Measurement(msgspec.Struct, frozen=True):
    values: dict[str, float]
    ts: datetime | None = None  # the device's own timestamp (tz-aware UTC); None = now

    def __post_init__(self) -> None:
        if self.ts is not None and self.ts.utcoffset() is None:
            raise ValueError("a measurement timestamp must be timezone-aware")


class DecodedUplink(msgspec.Struct, frozen=True):
    measurements: list[Measurement]
    battery_v: float | None = None
    battery_pct: float | None = None
    notes: tuple[str, ...] = ()


class Codec(Protocol):
    name: str
    kind: Kind
    source: str
    vendor_fields: FieldMapping | None

    def decode(self, f_port: int, data: bytes) -> DecodedUplink:
        """The readings in one uplink; CodecError(reason) when there are none to be had."""
        ...

    def interval_downlink(self, seconds: int) -> tuple[int, bytes] | None:
        """(f_port, bytes) that set the reporting interval; None when the device has none.

        CodecError when `seconds` is outside what the device accepts.
        """
        ...


# --- helpers the codecs share --------------------------------------------------------

def need(data: bytes, offset: int, length: int, what: str) -> bytes:
    """`length` bytes at `offset`, or CodecError naming what was cut short."""
    if offset + length > len(data):
        raise CodecError(f"truncated payload: {what} needs {length} byte(s) at offset {offset}, "
                         f"{max(len(data) - offset, 0)} left")
    return data[offset:offset + length]


def check_port(name: str, f_port: int, allowed: tuple[int, ...]) -> None:
    if f_port not in allowed:
        ports = ", ".join(str(p) for p in allowed)
        raise CodecError(f"{name}: unexpected fPort {f_port} (expects {ports})")


def check_interval(name: str, seconds: int, low: int, high: int) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not low <= seconds <= high:
        raise CodecError(f"{name}: reporting interval {seconds!r} s outside {low}..{high} s")


def int16_be(raw: bytes) -> int:
    return int(struct.unpack(">h", raw)[0])


def uint16_be(raw: bytes) -> int:
    return int(struct.unpack(">H", raw)[0])
