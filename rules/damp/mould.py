"""The VTT mould index (Hukka & Viitanen 1999, with the sensitivity classes of Ojanen et al. 2010).

M runs 0..6 (0 no growth, 1 some growth under a microscope, 3 visible, 6 heavy cover). It is
a state carried hour by hour for each home's cold spot: growth while 0 < T < 50 degC and
RH >= RHcrit, decline in dry spells. Constants, sources and check values are in
docs/science.md#vtt-mould-index; the wood and surface terms W and SQ are 0 (pine sapwood,
sawn surface), the reference the classes scale.

    RHcrit   = max(-0.00267 T^3 + 0.16 T^2 - 3.13 T + 100, RHmin)
    dM/dt    = k1 k2 / (7 exp(-0.68 ln T - 13.9 ln RH + 66.02))   per day
    k2       = max(1 - exp(2.3 (M - Mmax)), 0),  Mmax = A + B x - C x^2,  x = (RHcrit-RH)/(RHcrit-100)
    dry      -0.032/day for the first 6 h, 0 until 24 h, then -0.016/day

Hours with no usable data (NaN) leave a home's state as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from rules.errors import InvalidHomeSettings

log = logging.getLogger("rules.damp.mould")

FloatArray = npt.NDArray[np.float64]
MAX_INDEX = 6.0
HOURS_PER_DAY = 24.0
DECLINE_FIRST_6H_PER_DAY = 0.032
DECLINE_AFTER_24H_PER_DAY = 0.016


class Sensitivity(StrEnum):
    VERY_SENSITIVE = "very_sensitive"
    SENSITIVE = "sensitive"
    MEDIUM_RESISTANT = "medium_resistant"
    RESISTANT = "resistant"


@dataclass(frozen=True)
class ClassConstants:
    k1_below_1: float
    k1_from_1: float
    a: float
    b: float
    c: float
    rh_min: float


CLASSES: dict[Sensitivity, ClassConstants] = {
    Sensitivity.VERY_SENSITIVE: ClassConstants(1.0, 2.0, 1.0, 7.0, 2.0, 80.0),
    Sensitivity.SENSITIVE: ClassConstants(0.578, 0.386, 0.3, 6.0, 1.0, 80.0),
    Sensitivity.MEDIUM_RESISTANT: ClassConstants(0.072, 0.097, 0.0, 5.0, 1.5, 85.0),
    Sensitivity.RESISTANT: ClassConstants(0.033, 0.014, 0.0, 3.0, 1.0, 85.0),
}
CLASS_FIELDS = ("k1_below_1", "k1_from_1", "a", "b", "c", "rh_min")
# Painted plaster on plasterboard's paper face: what most UK cold spots are.
DEFAULT_SENSITIVITY = Sensitivity.SENSITIVE


def sensitivity(name: str) -> Sensitivity:
    try:
        return Sensitivity(name)
    except ValueError:
        known = ", ".join(s.value for s in Sensitivity)
        raise InvalidHomeSettings(f"unknown mould sensitivity class {name!r}; expected one of {known}",
                                  setting="sensitivity") from None


@dataclass(frozen=True)
class ClassArrays:
    """The class constants laid out per home, so one step updates every home at once."""

    k1_below_1: FloatArray
    k1_from_1: FloatArray
    a: FloatArray
    b: FloatArray
    c: FloatArray
    rh_min: FloatArray

    @classmethod
    def for_homes(cls, classes: list[Sensitivity] | Sensitivity, homes: int | None = None) -> ClassArrays:
        chosen = [classes] * (homes or 1) if isinstance(classes, Sensitivity) else list(classes)
        table = np.array([[getattr(CLASSES[s], f) for f in CLASS_FIELDS] for s in chosen],
                         dtype=np.float64).reshape(-1, 6)
        return cls(*(np.ascontiguousarray(table[:, i]) for i in range(6)))

    def select(self, homes: slice) -> ClassArrays:
        return ClassArrays(*(getattr(self, name)[homes] for name in CLASS_FIELDS))


@dataclass
class MouldState:
    """Per home: the index and how many hours the current dry spell has lasted."""

    index: FloatArray
    dry_hours: FloatArray

    @classmethod
    def zeros(cls, homes: int) -> MouldState:
        return cls(np.zeros(homes), np.zeros(homes))

    def copy(self) -> MouldState:
        return MouldState(self.index.copy(), self.dry_hours.copy())


def critical_rh(temp_c: FloatArray, rh_min: FloatArray | float) -> FloatArray:
    poly = ((-0.00267 * temp_c + 0.16) * temp_c - 3.13) * temp_c + 100.0
    return np.asarray(np.maximum(poly, rh_min), dtype=np.float64)


def step_hour(state: MouldState, temp_c: npt.ArrayLike, rh_pct: npt.ArrayLike, classes: ClassArrays,
              hours: float = 1.0) -> MouldState:
    """Advance every home by one hour of surface temperature and RH (NaN: no data, state held)."""
    temp = np.asarray(temp_c, dtype=np.float64)
    rh = np.minimum(np.asarray(rh_pct, dtype=np.float64), 100.0)
    known = np.isfinite(temp) & np.isfinite(rh)
    index = state.index
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rh_crit = critical_rh(temp, classes.rh_min)
        growing = known & (temp > 0) & (temp < 50) & (rh >= rh_crit)
        safe_t = np.where(growing, temp, 20.0)
        safe_rh = np.where(growing, rh, 100.0)
        days_per_unit = 7.0 * np.exp(-0.68 * np.log(safe_t) - 13.9 * np.log(safe_rh) + 66.02)
        x = (rh_crit - safe_rh) / (rh_crit - 100.0)
        x = np.where(np.isfinite(x), x, 1.0)
    m_max = classes.a + classes.b * x - classes.c * x * x
    k1 = np.where(index < 1.0, classes.k1_below_1, classes.k1_from_1)
    k2 = np.maximum(1.0 - np.exp(2.3 * (index - m_max)), 0.0)
    growth = k1 * k2 / days_per_unit * (hours / HOURS_PER_DAY)

    dry = known & ~growing
    dry_hours = np.where(dry, state.dry_hours + hours, np.where(growing, 0.0, state.dry_hours))
    decline_rate = np.where(dry_hours <= 6.0, DECLINE_FIRST_6H_PER_DAY,
                            np.where(dry_hours <= 24.0, 0.0, DECLINE_AFTER_24H_PER_DAY))
    change = np.where(growing, growth, np.where(dry, -decline_rate * hours / HOURS_PER_DAY, 0.0))
    return MouldState(np.clip(index + change, 0.0, MAX_INDEX), dry_hours)


def run_hours(state: MouldState, temp_c: npt.NDArray[np.floating[Any]], rh_pct: npt.NDArray[np.floating[Any]],
              classes: ClassArrays,
              keep_history: bool = False) -> tuple[MouldState, npt.NDArray[np.float32] | None]:
    """Advance through homes x hours arrays; optionally return the index after every hour."""
    hours = temp_c.shape[1]
    history = np.empty((temp_c.shape[0], hours), dtype=np.float32) if keep_history else None
    for h in range(hours):
        state = step_hour(state, temp_c[:, h], rh_pct[:, h], classes)
        if history is not None:
            history[:, h] = state.index
    return state, history


def days_to_reach(level: float, temp_c: float, rh_pct: float, cls: Sensitivity, max_days: int = 400
                  ) -> float | None:
    """Days of constant conditions until M reaches a level (None if it never does within max_days)."""
    classes = ClassArrays.for_homes(cls)
    state = MouldState.zeros(1)
    for hour in range(1, max_days * 24 + 1):
        before = float(state.index[0])
        state = step_hour(state, np.array([temp_c]), np.array([rh_pct]), classes)
        after = float(state.index[0])
        if after >= level:
            return (hour - 1 + (level - before) / (after - before)) / HOURS_PER_DAY
    return None
