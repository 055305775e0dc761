"""The crew's job sheet: a route plan's traversals as ordered, readable steps.

Consecutive traversals along the same road, spreading at the same rate (or all not
spreading), make one step ("Spread 8 g/m² along A38 Bristol Road, 1.2 km"). Between steps
the turn is told from the headings where one road ends and the next begins: continue
(within 30 degrees), bear, turn, sharp turn, U-turn; junctions are named by the roads
that meet there. A trip ends "return to the depot to reload" unless it is the vehicle's last.
The pieces (`heading`, `extend`, `turn_into`, `distance_words`) word the bin rounds' directions
too (rules.routing.roads).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.geo import LocalProjection, bearing_deg, turn_deg
from rules.gritting.network import Depot, RoadNetwork, Segment


@dataclass(frozen=True)
class Leg:
    road: str
    service: bool
    rate_g_m2: float
    length_m: float
    start_node: str
    end_node: str
    heading_in: float            # at its start
    heading_out: float           # at its end
    salt_kg: float


def oriented(segment: Segment, from_node: str) -> list[tuple[float, float]]:
    """The segment's coordinates in the direction of travel."""
    coords = list(segment.coords)
    return coords if from_node == segment.start_node else coords[::-1]


def heading(coords: Sequence[tuple[float, float]], at_end: bool, projection: LocalProjection) -> float:
    pts = np.asarray(coords[-2:] if at_end else coords[:2], dtype=np.float64)
    x, y = projection.xy(pts[:, 0], pts[:, 1])
    return float(bearing_deg(x[1] - x[0], y[1] - y[0]))


def junction_names(network: RoadNetwork) -> dict[str, str]:
    """Each node described by the roads that meet there."""
    roads: dict[str, list[str]] = defaultdict(list)
    for s in network.segments:
        for node in (s.start_node, s.end_node):
            if s.name not in roads[node]:
                roads[node].append(s.name)
    names = {}
    for node, here in roads.items():
        if len(here) >= 2:
            names[node] = "the junction of " + ", ".join(here[:-1]) + f" and {here[-1]}"
        else:
            names[node] = f"the end of {here[0]} ({node})"
    return names


def turn_words(angle: float) -> str:
    size = abs(angle)
    side = "right" if angle > 0 else "left"
    if size < 30:
        return "Continue"
    if size < 60:
        return f"Bear {side}"
    if size < 135:
        return f"Turn {side}"
    if size < 170:
        return f"Turn sharp {side}"
    return "Make a U-turn"


def legs(traversals: Sequence[Any], network: RoadNetwork, rates: Mapping[str, float], salt: Mapping[str, float],
         projection: LocalProjection) -> list[Leg]:
    """Traversals (edge_id, from_node, to_node, service) grouped into legs along one road."""
    by_id = {s.segment_id: s for s in network.segments}
    out: list[Leg] = []
    for t in traversals:
        seg = by_id[t.edge_id]
        coords = oriented(seg, t.from_node)
        rate = rates.get(t.edge_id, 0.0) if t.service else 0.0
        kg = salt.get(t.edge_id, 0.0) if t.service else 0.0
        h_in, h_out = heading(coords, False, projection), heading(coords, True, projection)
        extend(out, Leg(seg.name, bool(t.service), rate, seg.length_m, t.from_node, t.to_node, h_in, h_out, kg))
    return out


def extend(out: list[Leg], leg: Leg) -> None:
    """Add a leg, joined to the last one when it carries on along the same road, the same way."""
    last = out[-1] if out else None
    if last and last.road == leg.road and last.service == leg.service and last.rate_g_m2 == leg.rate_g_m2 \
            and last.end_node == leg.start_node and abs(turn_deg(last.heading_out, leg.heading_in)) < 30:
        out[-1] = Leg(last.road, last.service, leg.rate_g_m2, last.length_m + leg.length_m, last.start_node,
                      leg.end_node, last.heading_in, leg.heading_out, last.salt_kg + leg.salt_kg)
    else:
        out.append(leg)


def distance_words(metres: float) -> str:
    return f"{metres / 1000:.1f} km" if metres >= 1000 else f"{metres:.0f} m"


def turn_into(previous: Leg, leg: Leg, junctions: Mapping[str, str]) -> str:
    """The turn from one leg to the next, where: "Turn left onto X at the junction of A and B"."""
    turn = turn_words(turn_deg(previous.heading_out, leg.heading_in))
    where = junctions.get(leg.start_node, leg.start_node)
    onto = "along" if turn == "Continue" and previous.road == leg.road else "onto"
    return f"{turn} {onto} {leg.road} at {where}"


def trip_steps(trip_legs: Sequence[Leg], depot: Depot, junctions: Mapping[str, str], *, last_trip: bool,
               load_kg: float, trip_no: int, vehicle: int) -> list[str]:
    steps = [f"Trip {trip_no} (gritter {vehicle}): load at least {load_kg:,.0f} kg of salt at {depot.name}."]
    previous: Leg | None = None
    for leg in trip_legs:
        action = (f"spread {leg.rate_g_m2:g} g/m² along {leg.road} ({distance_words(leg.length_m)}, "
                  f"{leg.salt_kg:,.0f} kg)") if leg.service else \
            f"drive without spreading along {leg.road} ({distance_words(leg.length_m)})"
        if previous is None:
            steps.append(f"Leave {depot.name} and {action}.")
        else:
            steps.append(f"{turn_into(previous, leg, junctions)}, then {action}.")
        previous = leg
    if last_trip:
        steps.append(f"Return to {depot.name}: this gritter's work is done.")
    else:
        steps.append(f"Return to {depot.name} to reload.")
    return steps
