"""Spread rates, g/m², Transport Scotland (2010), dry salt / pre-wetted salt (DESIGN.md section 5).

    frost, RST >= -2                          8 / 8
    -2 > RST > -5       dry or damp road     10 / 9      wet road  16 / 15
    -5 >= RST > -10     dry or damp road     18 / 18     wet road  2 x 15
    light snow forecast                      20 / 18
    medium or heavy snow, or freezing rain   2 x 20
"2 x 15" is two treatments of 15 g/m² (30 in all). The table stops at -10 degC: colder
roads get the -5..-10 row and a note that salt alone works slowly there (add abrasives).
When frost and snow both apply the heavier treatment wins. Vectorised: one call rates a
whole network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SNOW_NONE, SNOW_LIGHT, SNOW_HEAVY = 0, 1, 2   # heavy: medium/heavy snow or freezing rain
TABLE_FLOOR_C = -10.0


@dataclass(frozen=True)
class Rates:
    per_pass_g_m2: FloatArray
    passes: IntArray            # 1, or 2 for "two treatments"
    row: list[str]              # which table row, in words

    @property
    def total_g_m2(self) -> FloatArray:
        return np.asarray(self.per_pass_g_m2 * self.passes, dtype=np.float64)


def frost_rates(rst_c: FloatArray, wet: BoolArray, prewet: bool) -> tuple[FloatArray, IntArray, IntArray]:
    """(g/m² per pass, passes, band 0..3) for the frost/ice rows; band 3 is below the table."""
    rst = np.asarray(rst_c, dtype=np.float64)
    wet = np.asarray(wet, dtype=bool)
    band = np.where(rst >= -2.0, 0, np.where(rst > -5.0, 1, np.where(rst > TABLE_FLOOR_C, 2, 3)))
    dry_column = np.array([8.0, 9.0 if prewet else 10.0, 18.0, 18.0])
    wet_column = np.array([8.0, 15.0 if prewet else 16.0, 15.0, 15.0])
    wet_passes = np.array([1, 1, 2, 2])
    per_pass = np.where(wet, wet_column[band], dry_column[band])
    passes = np.where(wet, wet_passes[band], 1)
    return per_pass, passes.astype(np.int64), band.astype(np.int64)


def snow_rates(snow: IntArray, prewet: bool) -> tuple[FloatArray, IntArray]:
    snow = np.asarray(snow, dtype=np.int64)
    per_pass = np.select([snow == SNOW_LIGHT, snow == SNOW_HEAVY], [18.0 if prewet else 20.0, 20.0], 0.0)
    passes = np.where(snow == SNOW_HEAVY, 2, np.where(snow == SNOW_LIGHT, 1, 0))
    return per_pass, passes.astype(np.int64)


_BAND_WORDS = ("RST at or above -2 °C", "-2 > RST > -5 °C", "-5 >= RST > -10 °C",
               "RST at or below -10 °C (beyond the table: the -5..-10 rate; consider adding grit)")


def spread_rates(rst_c: FloatArray, wet: BoolArray, snow: IntArray, frost: BoolArray, prewet: bool) -> Rates:
    """The rate for each segment: its frost/ice row when `frost`, its snow row, the heavier of the two."""
    f_rate, f_passes, band = frost_rates(np.nan_to_num(rst_c, nan=0.0), wet, prewet)
    f_rate, f_passes = np.where(frost, f_rate, 0.0), np.where(frost, f_passes, 0)
    s_rate, s_passes = snow_rates(snow, prewet)
    use_snow = s_rate * s_passes > f_rate * f_passes
    per_pass = np.where(use_snow, s_rate, f_rate)
    passes = np.where(use_snow, s_passes, f_passes).astype(np.int64)
    salt = "pre-wetted salt" if prewet else "dry salt"
    rows = []
    for k in range(per_pass.size):
        if passes[k] == 0:
            rows.append("")
            continue
        amount = f"2 x {per_pass[k]:g} g/m² {salt} (two treatments)" if passes[k] == 2 \
            else f"{per_pass[k]:g} g/m² {salt}"
        if use_snow[k]:
            what = "light snow" if snow[k] == SNOW_LIGHT else "medium/heavy snow or freezing rain"
        else:
            what = f"{_BAND_WORDS[band[k]]}, {'wet' if wet[k] else 'dry or damp'} road"
        rows.append(f"{amount} ({what})")
    return Rates(np.asarray(per_pass, dtype=np.float64), passes, rows)
