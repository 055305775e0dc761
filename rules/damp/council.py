"""The council's view: homes ranked for officers, statistics by area for everyone else.

Officers (who may see households) get homes ranked by risk. Anything that leaves the
council, open data included, is by area only: no household ids, no coordinates, areas
with fewer than `min_homes` homes withheld, and counts from 1 to `min_cell - 1` shown as
"fewer than N" so that no single home can be picked out.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from rules.damp.risk import LEVELS, UNKNOWN

log = logging.getLogger("rules.damp.council")

MIN_HOMES = 5
MIN_CELL = 3
SERIOUS = ("high", "severe")


@dataclass(frozen=True)
class HomeRisk:
    household_id: str
    area: str | None
    level: str
    mould_index: float
    damp_hours_7d: int


@dataclass(frozen=True)
class RankedHome:
    rank: int
    home: HomeRisk


@dataclass(frozen=True)
class AreaStatistics:
    area: str
    homes: int | None                  # None: withheld (fewer than min_homes)
    by_level: dict[str, int | str]     # count, or "fewer than 3"
    share_high_or_severe: float | None
    median_mould_index: float | None

    def as_row(self) -> dict[str, object]:
        """A flat row for CSV or JSON open data."""
        return {"area": self.area, "homes": self.homes if self.homes is not None else f"fewer than {MIN_HOMES}",
                **{f"homes_{level}": self.by_level.get(level, "") for level in (*LEVELS, UNKNOWN)},
                "share_high_or_severe": self.share_high_or_severe, "median_mould_index": self.median_mould_index}


def _order(home: HomeRisk) -> tuple[int, float, int]:
    severity = LEVELS.index(home.level) if home.level in LEVELS else -1
    return (-severity, -home.mould_index, -home.damp_hours_7d)


def rank_homes(homes: list[HomeRisk]) -> list[RankedHome]:
    """Worst first: by level, then mould index, then damp hours; homes with unknown risk last."""
    return [RankedHome(rank, home) for rank, home in enumerate(sorted(homes, key=_order), start=1)]


def assign_areas(lon: npt.ArrayLike, lat: npt.ArrayLike, areas: dict[str, shapely.Geometry]) -> list[str | None]:
    """The area (ward) polygon each point falls in, through an STRtree; None outside all."""
    names = list(areas)
    if not names:
        return [None] * np.asarray(lon).size
    tree = shapely.STRtree(list(areas.values()))
    points = shapely.points(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    found: list[str | None] = [None] * len(points)
    point_index, area_index = tree.query(points, predicate="within")
    for p, a in zip(point_index, area_index, strict=True):
        if found[p] is None:
            found[p] = names[a]
    return found


def _cell(count: int, min_cell: int) -> int | str:
    return f"fewer than {min_cell}" if 0 < count < min_cell else count


def area_statistics(homes: list[HomeRisk], min_homes: int = MIN_HOMES, min_cell: int = MIN_CELL
                    ) -> list[AreaStatistics]:
    """Statistics per area, safe to publish: small areas withheld, small counts blurred."""
    grouped: dict[str, list[HomeRisk]] = defaultdict(list)
    for home in homes:
        grouped[home.area or "unknown area"].append(home)
    out = []
    for area in sorted(grouped):
        members = grouped[area]
        if len(members) < min_homes:
            out.append(AreaStatistics(area, None, {}, None, None))
            continue
        known = [h for h in members if h.level in LEVELS]
        counts = {level: sum(1 for h in members if h.level == level) for level in (*LEVELS, UNKNOWN)}
        share = sum(1 for h in known if h.level in SERIOUS) / len(known) if known else None
        median = float(np.median([h.mould_index for h in known])) if known else None
        out.append(AreaStatistics(area, len(members), {k: _cell(v, min_cell) for k, v in counts.items()},
                                  round(share, 2) if share is not None else None,
                                  round(median, 1) if median is not None else None))
    return out

