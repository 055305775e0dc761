"""Spread rates, g/m²: a council's treatment matrix (docs/gritting.md, "Spread rates").

Two matrices ship, chosen by `CITYOPS_GRITTING__RATE_MATRIX`; a council's own can be loaded
from JSON (`RATE_MATRIX_FILE`, same shape as `MATRICES` below, see `matrix_from_json`):

- **nwsrg** (default): the NWSRG *Practical Guide for Winter Service* (National Winter
  Service Research Group, 2nd edition, 2016), precautionary treatments for dry, pre-wetted
  and treated salt, road surface temperature bands down to -15 degC, dry/damp and wet roads;
  ice formed above -5 degC 20 g/m², at or below -5 degC 2 x 20; snow rows as below.
- **ts2010**: Transport Scotland, *Scottish Road Network: lessons learned ... winter
  2009/10*, Appendix D, the revised salt treatment matrix (dry and pre-wetted salt; treated
  salt takes the dry column).

A row "2 x 15" is two treatments of 15 (30 in all). Ice or snow on the road always takes
the ice/snow rows (or the frost row for its band if heavier); an unknown temperature with
ice or snow takes the coldest band; colder than the last band takes the last band and a
note to add grit. When frost, ice and snow rows all apply the heaviest wins. Vectorised:
one call rates a whole network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from rules.errors import InvalidRateMatrix

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Salt = Literal["dry", "prewet", "treated"]
Dose = tuple[float, int]                      # g/m² per treatment, treatments

SNOW_NONE, SNOW_LIGHT, SNOW_HEAVY = 0, 1, 2   # heavy: medium/heavy snow or freezing rain
SALTS: tuple[Salt, ...] = ("dry", "prewet", "treated")
SALT_WORDS = {"dry": "dry salt", "prewet": "pre-wetted salt", "treated": "treated salt"}


@dataclass(frozen=True)
class RateMatrix:
    """A treatment matrix: frost bands by RST, and the ice and snow rows, per kind of salt."""

    name: str
    source: str
    band_floors_c: tuple[float, ...]              # band b: RST >= floor (the first), > floor (the rest)
    frost_dry: Mapping[Salt, tuple[Dose, ...]]    # per band, dry or damp road
    frost_wet: Mapping[Salt, tuple[Dose, ...]]    # per band, wet road (or rain/dew due)
    ice_above: Dose                               # ice formed, RST above ice_split_c
    ice_below: Dose                               # ice formed, RST at or below ice_split_c
    snow_light: Mapping[Salt, Dose]
    snow_heavy: Dose                              # medium/heavy snow or freezing rain forecast
    ice_split_c: float = -5.0

    def __post_init__(self) -> None:
        bands = len(self.band_floors_c)
        for column in (self.frost_dry, self.frost_wet):
            for salt, doses in column.items():
                if len(doses) != bands + 1:
                    raise InvalidRateMatrix(f"{self.name}: {salt} column has {len(doses)} rows for "
                                            f"{bands} band floors (needs one more: the coldest band)")
        if list(self.band_floors_c) != sorted(self.band_floors_c, reverse=True):
            raise InvalidRateMatrix(f"{self.name}: band floors must go from warm to cold")

    def band_words(self, band: int) -> str:
        floors = self.band_floors_c
        if band == 0:
            return f"RST at or above {floors[0]:g} °C"
        if band == len(floors):
            return f"RST at or below {floors[-1]:g} °C (beyond the matrix: its coldest row; consider adding grit)"
        return f"{floors[0]:g} > RST > {floors[1]:g} °C" if band == 1 else \
            f"{floors[band - 1]:g} >= RST > {floors[band]:g} °C"

    def column(self, doses: Mapping[Salt, Any], salt: Salt) -> Any:
        return doses.get(salt, doses["dry"])


def _doses(*values: float | tuple[int, float]) -> tuple[Dose, ...]:
    """8 -> (8, 1); (2, 15) -> (15, 2)."""
    return tuple((float(v[1]), int(v[0])) if isinstance(v, tuple) else (float(v), 1) for v in values)


MATRICES: dict[str, RateMatrix] = {
    # NWSRG Practical Guide for Winter Service (2016), Section 7 precautionary treatment
    # matrices, "normal" conditions: bands >= -2, -2..-5, -5..-7, -7..-10, -10..-15, colder.
    "nwsrg": RateMatrix(
        name="nwsrg",
        source="NWSRG Practical Guide for Winter Service, 2nd edition (2016)",
        band_floors_c=(-2.0, -5.0, -7.0, -10.0, -15.0),
        frost_dry={"dry": _doses(8, 8, 13, 18, 25, 25),
                   "prewet": _doses(7, 7, 11, 15, 21, 21),
                   "treated": _doses(7, 7, 11, 15, 21, 21)},
        frost_wet={"dry": _doses(8, 13, 20, (2, 14), (2, 19), (2, 19)),
                   "prewet": _doses(7, 11, 17, (2, 12), (2, 16), (2, 16)),
                   "treated": _doses(7, 11, 17, (2, 12), (2, 16), (2, 16))},
        ice_above=(20.0, 1), ice_below=(20.0, 2),
        snow_light={"dry": (20.0, 1), "prewet": (18.0, 1), "treated": (18.0, 1)},
        snow_heavy=(20.0, 2)),
    # Transport Scotland (2010), Appendix D: >= -2, -2..-5, -5..-10, colder (as -5..-10).
    "ts2010": RateMatrix(
        name="ts2010",
        source="Transport Scotland, revised salt treatment matrix (2010), Appendix D",
        band_floors_c=(-2.0, -5.0, -10.0),
        frost_dry={"dry": _doses(8, 10, 18, 18), "prewet": _doses(8, 9, 18, 18)},
        frost_wet={"dry": _doses(8, 16, (2, 15), (2, 15)), "prewet": _doses(8, 15, (2, 15), (2, 15))},
        ice_above=(20.0, 1), ice_below=(20.0, 2),
        snow_light={"dry": (20.0, 1), "prewet": (18.0, 1)},
        snow_heavy=(20.0, 2)),
}


def matrix_from_json(text: str, source: str) -> RateMatrix:
    """A council's own matrix: {"name", "source", "band_floors_c": [...], "frost_dry": {"dry": [8, [2, 15], ..]},
    "frost_wet": {...}, "ice_above": 20, "ice_below": [2, 20], "snow_light": {"dry": 20}, "snow_heavy": [2, 20]}."""
    try:
        data = json.loads(text)
        def dose(v: Any) -> Dose:
            return (float(v[1]), int(v[0])) if isinstance(v, list) else (float(v), 1)
        return RateMatrix(
            name=str(data.get("name", source)), source=str(data.get("source", source)),
            band_floors_c=tuple(float(x) for x in data["band_floors_c"]),
            frost_dry={k: tuple(dose(v) for v in vs) for k, vs in data["frost_dry"].items()},
            frost_wet={k: tuple(dose(v) for v in vs) for k, vs in data["frost_wet"].items()},
            ice_above=dose(data["ice_above"]), ice_below=dose(data["ice_below"]),
            snow_light={k: dose(v) for k, v in data["snow_light"].items()}, snow_heavy=dose(data["snow_heavy"]),
            ice_split_c=float(data.get("ice_split_c", -5.0)))
    except InvalidRateMatrix:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise InvalidRateMatrix(f"{source}: not a rate matrix ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Rates:
    per_pass_g_m2: FloatArray
    passes: IntArray            # 1, or 2 for "two treatments"
    code: IntArray              # which matrix row: an index into `words`
    words: list[str]            # the rows used, in words

    @property
    def row(self) -> list[str]:
        return [self.words[i] for i in self.code.tolist()]

    @property
    def total_g_m2(self) -> FloatArray:
        return np.asarray(self.per_pass_g_m2 * self.passes, dtype=np.float64)


def bands(matrix: RateMatrix, rst_c: FloatArray) -> IntArray:
    """Band per RST: 0 at or above the first floor; below it, one more for each later floor at or
    above the RST ("-2 > RST > -5", "-5 >= RST > -10"); NaN (unknown) is the coldest band."""
    rst = np.asarray(rst_c, dtype=np.float64)
    floors = np.asarray(matrix.band_floors_c)
    with np.errstate(invalid="ignore"):
        colder = 1 + (rst[:, None] <= floors[None, 1:]).sum(axis=1)
        band = np.where(rst >= floors[0], 0, colder)
    return np.where(np.isfinite(rst), band, len(floors)).astype(np.int64)


def spread_rates(rst_c: FloatArray, wet: BoolArray, snow: IntArray, frost: BoolArray, salt: Salt,
                 matrix: RateMatrix, ice: BoolArray | None = None) -> Rates:
    """The rate per segment: the heaviest of its frost row (when `frost`), ice row (`ice`), snow row."""
    n = np.asarray(rst_c).size
    rst = np.asarray(rst_c, dtype=np.float64)
    wet = np.asarray(wet, dtype=bool)
    ice = np.zeros(n, dtype=bool) if ice is None else np.asarray(ice, dtype=bool)
    snow = np.asarray(snow, dtype=np.int64)
    band = bands(matrix, rst)
    dry_col = np.array(matrix.column(matrix.frost_dry, salt))
    wet_col = np.array(matrix.column(matrix.frost_wet, salt))
    frost_dose = np.where(wet[:, None], wet_col[band], dry_col[band])            # (n, 2)
    frost_dose = np.where(np.asarray(frost, dtype=bool)[:, None], frost_dose, 0.0)
    cold_ice = ~np.isfinite(rst) | (rst <= matrix.ice_split_c)
    ice_dose = np.where(cold_ice[:, None], np.array(matrix.ice_below), np.array(matrix.ice_above))
    ice_dose = np.where(ice[:, None], ice_dose, 0.0)
    light = np.array(matrix.column(matrix.snow_light, salt))
    snow_dose = np.select([snow[:, None] == SNOW_LIGHT, snow[:, None] == SNOW_HEAVY],
                          [np.broadcast_to(light, (n, 2)), np.broadcast_to(np.array(matrix.snow_heavy), (n, 2))],
                          0.0)
    candidates = np.stack([frost_dose, ice_dose, snow_dose])                      # (3, n, 2)
    totals = candidates[..., 0] * candidates[..., 1]
    which = totals.argmax(axis=0)                                                 # ties: frost, then ice
    chosen = candidates[which, np.arange(n)]
    per_pass, passes = chosen[:, 0], chosen[:, 1].astype(np.int64)
    salt_words = SALT_WORDS[salt] if salt in matrix.frost_dry else f"{SALT_WORDS['dry']} (no {salt} column)"
    # one integer per distinct row (mixed radix over small ranges), its words written once
    keys = ((((((which * 10_000 + np.rint(per_pass * 10).astype(np.int64)) * 3 + passes) * 64 + band) * 2 + wet)
             * 3 + snow) * 2 + cold_ice).astype(np.int64)
    _, first, code = np.unique(keys, return_index=True, return_inverse=True)
    words = [_row_words(matrix, int(which[k]), float(per_pass[k]), int(passes[k]), int(band[k]), bool(wet[k]),
                        int(snow[k]), bool(cold_ice[k]), salt_words) for k in first.tolist()]
    return Rates(np.asarray(per_pass, dtype=np.float64), passes, np.asarray(code, dtype=np.int64).reshape(-1), words)


def _row_words(matrix: RateMatrix, which: int, per_pass: float, passes: int, band: int, wet: bool, snow: int,
               cold_ice: bool, salt_words: str) -> str:
    """One matrix row in words (written once per distinct row: spread_rates groups the segments)."""
    if passes == 0:
        return ""
    amount = f"2 x {per_pass:g} g/m² {salt_words} (two treatments)" if passes == 2 \
        else f"{per_pass:g} g/m² {salt_words}"
    if which == 2:
        what = "light snow" if snow == SNOW_LIGHT else "medium/heavy snow or freezing rain"
    elif which == 1:
        what = (f"ice formed, RST at or below {matrix.ice_split_c:g} °C or unknown" if cold_ice
                else f"ice formed, RST above {matrix.ice_split_c:g} °C")
    else:
        what = f"{matrix.band_words(band)}, {'wet' if wet else 'dry or damp'} road"
    return f"{amount} ({what}; {matrix.name})"
