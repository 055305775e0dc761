"""The one small interface every driver (real or simulated) offers.

`read()` returns a typed value or raises a SensorError subclass (firmware.errors); it
never returns a made-up number. Drivers open their hardware lazily on the first read,
so constructing one on a machine without the hardware (or its libraries) works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class Climate:
    temp_c: float
    rh_pct: float


@dataclass(frozen=True)
class Temperature:
    temp_c: float


@dataclass(frozen=True)
class Distance:
    distance_mm: float
    pings: int  # how many valid echoes the median came from


@dataclass(frozen=True)
class Position:
    lat: float
    lon: float
    utc: datetime | None = None


@dataclass(frozen=True)
class Battery:
    volts: float


@dataclass(frozen=True)
class Tilt:
    degrees: float


class Driver(Protocol[T_co]):
    name: str

    def read(self) -> T_co: ...

    def close(self) -> None: ...
