"""Disclosure control for open statistics: counts of members per area and category.

Pure: members in, the numbers safe to publish out. ONS-style rules, for one area's counts:

- withheld: an area with fewer than `min_area` members publishes no number at all;
- rounded: every number published (the total and each cell) is rounded to the nearest
  `base`, halves up;
- dominance: where one category holds more than `dominance` of the members, the whole
  breakdown is suppressed (knowing someone lives there would tell their category);
- primary suppression: a cell with fewer than `min_cell` members, zero included (an exact
  zero tells every member's category is another one);
- complementary suppression: when cells are suppressed, at least two are, and together
  they hold at least `min_cell` members; otherwise the smallest published cells join them
  (the total less the published cells would give them back); if that takes every cell,
  the breakdown is suppressed.

A share is only ever computed from the published, rounded numbers (it adds nothing to
them); no median is published (the median of a group is one member's own value).

Between snapshots (`release_members`): an area's members change only when at least
`min_cell` of them changed (joined or left) since the last snapshot; until then the last
snapshot's members are counted again. One home installed (or removed) never changes a
count on its own, so differencing two snapshots cannot single it out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    PUBLISHED = "published"                        # total and the cells not suppressed
    BREAKDOWN_SUPPRESSED = "breakdown suppressed"  # the total only
    WITHHELD = "withheld"                          # nothing: too few members


@dataclass(frozen=True)
class Policy:
    min_area: int = 10
    min_cell: int = 10
    base: int = 5
    dominance: float = 0.5

    def __post_init__(self) -> None:
        if self.base < 1 or self.min_cell < 1 or self.min_area < self.min_cell:
            raise ValueError("need base >= 1, min_cell >= 1 and min_area >= min_cell")
        if not 0 < self.dominance < 1:
            raise ValueError("dominance is a share strictly between 0 and 1")

    def as_dict(self) -> dict[str, float]:
        return {"min_area": self.min_area, "min_cell": self.min_cell, "base": self.base,
                "dominance": self.dominance}


@dataclass(frozen=True)
class Release:
    """One area as published: None where a number is withheld or suppressed."""
    area: str
    status: Status
    total: int | None
    cells: dict[str, int | None] = field(default_factory=dict)

    def share(self, categories: Iterable[str]) -> float | None:
        """The published cells' share of the published total, when all of them are published."""
        values = [self.cells.get(c) for c in categories]
        if self.total is None or not self.total or any(v is None for v in values):
            return None
        return round(sum(v for v in values if v is not None) / self.total, 2)


def round_to(value: int, base: int) -> int:
    """The nearest multiple of base, halves up (12 -> 10, 13 -> 15 for base 5)."""
    return (2 * value + base) // (2 * base) * base


def suppressed_cells(counts: Mapping[str, int], policy: Policy) -> set[str]:
    """Primary (small, zero included) and complementary suppression for one area's cells."""
    hidden = {c for c, n in counts.items() if n < policy.min_cell}
    shown = sorted((c for c in counts if c not in hidden), key=lambda c: (counts[c], c))
    while hidden and (len(hidden) < 2 or sum(counts[c] for c in hidden) < policy.min_cell) and shown:
        hidden.add(shown.pop(0))
    return hidden


def protect(area: str, counts: Mapping[str, int], policy: Policy) -> Release:
    """What may be published of one area's counts per category (every category present, zeros included)."""
    if any(n < 0 for n in counts.values()):
        raise ValueError("counts are never negative")
    total = sum(counts.values())
    if total < policy.min_area:
        return Release(area, Status.WITHHELD, None, dict.fromkeys(counts))
    rounded = round_to(total, policy.base)
    hidden = suppressed_cells(counts, policy)
    if max(counts.values()) > policy.dominance * total or hidden == set(counts):
        return Release(area, Status.BREAKDOWN_SUPPRESSED, rounded, dict.fromkeys(counts))
    return Release(area, Status.PUBLISHED, rounded,
                   {c: None if c in hidden else round_to(n, policy.base) for c, n in counts.items()})


@dataclass(frozen=True)
class Member:
    member_id: str
    area: str
    category: str


def release_members(previous: frozenset[str] | None, current: frozenset[str], policy: Policy) -> frozenset[str]:
    """Who an area counts this time: the current members once at least min_cell joined or left
    since the previous snapshot (or there was none), else the previous snapshot's members."""
    if previous is None or len(previous ^ current) >= policy.min_cell:
        return current
    return previous


def snapshot(members: Sequence[Member], previous: Mapping[str, frozenset[str]] | None,
             categories: Sequence[str], policy: Policy,
             known: Mapping[str, Member] | None = None) -> tuple[list[Release], dict[str, frozenset[str]]]:
    """One period's releases per area, and the members each area counted.

    `members` are the current ones; `previous` the members each area counted last time (None:
    the first snapshot); `known` any member's latest place and category, for previous members
    counted again after they left (default: `members`)."""
    lookup = {m.member_id: m for m in known.values()} if known else {}
    lookup.update({m.member_id: m for m in members})
    by_area: dict[str, set[str]] = {}
    for m in members:
        by_area.setdefault(m.area, set()).add(m.member_id)
    areas = sorted(set(by_area) | set(previous or {}))
    releases, counted = [], {}
    for area in areas:
        before = None if previous is None else previous.get(area, frozenset())
        ids = release_members(before, frozenset(by_area.get(area, ())), policy)
        if not ids and (previous is None or area not in previous):
            continue  # an area listed for the first time because one home joined would show that home
        counts = Counter(lookup[i].category for i in ids if i in lookup)
        unknown = set(counts) - set(categories)
        if unknown:
            raise ValueError(f"categories not in the table: {sorted(unknown)}")
        releases.append(protect(area, {c: counts.get(c, 0) for c in categories}, policy))
        counted[area] = ids
    return releases, counted
