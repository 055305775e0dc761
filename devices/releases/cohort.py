"""Who a rollout targets, and in which order (pure).

A cohort filters the registry (kinds, an area by name or polygon, a list of ids) and keeps
a percentage of what matches. Each device gets a bucket in [0, 1) from a hash of the rollout's
salt (the release version) and its id: the cohort's percentage keeps the devices whose
bucket is below it, and the stages take the lowest buckets first. So the same release
always picks the same devices, and stage 1 (5 %) is inside stage 2 (25 %) inside 100 %.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import Point, Polygon

from devices.releases.errors import RolloutError

KINDS = ("frog", "road", "bin")


@dataclass(frozen=True)
class Candidate:
    device_id: str
    kind: str
    lon: float | None = None
    lat: float | None = None
    area: str | None = None  # the household's area (frog boxes), from damp_home_settings


@dataclass(frozen=True)
class Cohort:
    percent: float = 100.0
    kinds: tuple[str, ...] = ()
    area: str | None = None
    area_wkt: str | None = None
    devices: tuple[str, ...] = ()
    _polygon: Polygon | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.percent <= 100:
            raise RolloutError(f"cohort percentage {self.percent:g} must be more than 0 and at most 100")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise RolloutError(f"unknown device kind {bad[0]!r} (kinds: {', '.join(KINDS)})")
        if self.area_wkt is not None:
            try:
                polygon = shapely.from_wkt(self.area_wkt)
            except shapely.errors.GEOSException as exc:
                raise RolloutError(f"the area polygon is not valid WKT: {exc}") from None
            if not isinstance(polygon, Polygon) or not polygon.is_valid:
                raise RolloutError("the area must be one valid POLYGON in lon/lat")
            object.__setattr__(self, "_polygon", polygon)

    def matches(self, device: Candidate) -> bool:
        if self.kinds and device.kind not in self.kinds:
            return False
        if self.devices and device.device_id not in self.devices:
            return False
        if self.area is not None and device.area != self.area:
            return False
        if self._polygon is not None:
            if device.lon is None or device.lat is None:
                return False
            return bool(self._polygon.covers(Point(device.lon, device.lat)))
        return True

    def as_json(self) -> dict[str, Any]:
        return {"percent": self.percent, "kinds": list(self.kinds), "area": self.area, "area_wkt": self.area_wkt,
                "devices": list(self.devices)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Cohort:
        return cls(percent=float(value.get("percent", 100.0)), kinds=tuple(value.get("kinds") or ()),
                   area=value.get("area"), area_wkt=value.get("area_wkt"), devices=tuple(value.get("devices") or ()))

    def describe(self) -> str:
        parts = [f"{self.percent:g} % of"]
        parts.append(", ".join(self.kinds) if self.kinds else "all kinds")
        if self.area:
            parts.append(f"in area {self.area}")
        if self.area_wkt:
            parts.append("inside the given polygon")
        if self.devices:
            parts.append(f"among {len(self.devices)} listed devices")
        return " ".join(parts)


def bucket(salt: str, device_id: str) -> float:
    digest = hashlib.sha256(f"{salt}\0{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def members(cohort: Cohort, devices: Sequence[Candidate], salt: str) -> list[str]:
    """The cohort's device ids, lowest bucket first."""
    keyed = [(bucket(salt, d.device_id), d.device_id) for d in devices if cohort.matches(d)]
    return [device_id for b, device_id in sorted(keyed) if b < cohort.percent / 100]


def stage_count(cohort_size: int, stage_percent: float) -> int:
    """How many of the cohort a stage reaches: rounded up, so a small fleet's first stage is
    not empty."""
    return min(cohort_size, math.ceil(cohort_size * stage_percent / 100 - 1e-9))
