"""The demo town, generated from a seed (pure: no I/O).

Ashbury is a grid town of 14 x 14 junctions about 160 m apart, inside the default council
area (Bristol). A river runs east-west between the 10th and 11th streets; three bridges
cross it. Every street has a name; the High Street and Bristol Road cross in the town
centre (priority 1), four distributor roads and two bus routes are priority 2 and 3, the
rest residential. In the centre Park Row and Queen Street, either side of the High Street,
are a one-way pair (Park Row westbound, Queen Street eastbound); two closes, Acorn Close off
Beacon Lane to the north and Heron Close off Mill Lane to the south, are dead ends with a
turning head and a bin each. The gritting network is split into four quadrant routes sharing one
depot. Thermal mapping: bridges run 2 degC colder than their route, the wooded valley in
the north-west and the cutting on Bristol Road are shaded (1.2-1.8 degC colder), the
centre is 0.8 degC warmer (heat island).

On it: 30 fixed road sensors (on every bridge, the shaded roads and spread over the
routes), one gritter driving the distributor loop, 60 homes with frog boxes in five
areas (every fifth home cold, badly insulated and damp), 300 bins with a weekly
collection day per area, a waste depot with three trucks. Besides them, a few LoRaWAN
devices heard through a (simulated) ChirpStack network server: 4 homes with Milesight
EM300-TH sensors and 6 bins, 4 with Dragino LDDS75 and 2 with Milesight EM310-UDL, placed
as the others are, with DevEUIs fixed by the seed. The same seed gives the same town, to
the last coordinate.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Any

from simulation.seeds import rng_for

PREFIX = "demo-"
CENTRE = (-2.600, 51.455)          # lon, lat: inside the default CITYOPS_DEVICES__AREA_WKT
SPACING_M = 160.0
SIZE = 14                          # junctions per side
RIVER_BELOW_ROW = 9                # the river runs between rows 9 and 10
BRIDGE_COLUMNS = (2, 6, 10)
MAIN = 6                           # the High Street (row) and Bristol Road (column)
DISTRIBUTORS = (2, 10)
BUS_ROUTES = (4, 8)
ONE_WAY_ROWS = {5: -1, 7: +1}      # Park Row westbound, Queen Street eastbound ...
ONE_WAY_COLUMNS = range(4, 9)      # ... along the five blocks of the town centre
# the closes: name, the junction (row, col) they leave from, metres north (negative: south)
CLOSES = (("Acorn Close", (SIZE - 1, 3), 130.0), ("Heron Close", (0, 9), -130.0))
CLOSE_BINS = (149, 299)            # these bins stand two thirds of the way along a close
ROW_NAMES = ("Mill Lane", "Orchard Road", "Ashley Road", "Church Street", "Victoria Street", "Park Row",
             "High Street", "Queen Street", "Albert Road", "Wharf Road", "Riverside", "Hill Street",
             "Woodland Road", "Beacon Lane")
COLUMN_NAMES = ("Quarry Road", "Elm Grove", "Cotham Road", "Station Road", "Chapel Street", "Market Street",
                "Bristol Road", "King Street", "Castle Street", "Meadow Way", "Redland Road", "Fairfield Road",
                "Brook Lane", "Kingsway")
AREAS = ("Town Centre", "Northgate", "Eastfield", "Southmead", "Westbury")
ROUTES = (("nw", "North-west"), ("ne", "North-east"), ("sw", "South-west"), ("se", "South-east"))
SALT_CAPACITY_KG = 4000.0
ROAD_SENSORS = 30
HOMES = 60
BINS = 300
DAMP_EVERY = 5                     # every fifth home is cold, badly insulated and damp
LORAWAN_HOMES = 4
LORAWAN_BINS = 6
LORAWAN_EM310_FROM = 4             # LoRaWAN bins from this index carry a Milesight EM310-UDL, before it an LDDS75
NETWORK_SERVER = "demo-chirpstack"  # the LoRaWAN devices' network server (a NetworkServer name) ...
LORAWAN_APPLICATION = "0d3e0c17-de00-4a5b-8000-00000000a5b1"   # ... its application for the town (ChirpStack's id)
NETWORK_SERVER_CLIENT_ID = "demo-chirpstack"              # the simulated ChirpStack's MQTT client id
INTEGRATION_CLIENT_ID = f"cityops-lorawan-{NETWORK_SERVER}"   # `cityops lorawan run`'s, for that server
# the vendors' IEEE OUIs, which start their DevEUIs: Milesight 24:E1:24, Dragino A8:40:41
MILESIGHT_OUI, DRAGINO_OUI = "24e124", "a84041"
BIN_HEIGHT_MM = 1300               # sensor to the bottom of the empty bin (rules.bins.fill)
BIN_DEPTH_MM = 1000


@dataclass(frozen=True)
class Street:
    segment_id: str
    name: str
    priority: int
    coords: tuple[tuple[float, float], ...]      # lon, lat
    route_id: str | None
    thermal_offset_c: float
    bridge: bool
    shaded: bool
    oneway: bool = False                         # only in the direction of `coords`

    @property
    def midpoint(self) -> tuple[float, float]:
        (x0, y0), (x1, y1) = self.coords[0], self.coords[-1]
        return round((x0 + x1) / 2, 6), round((y0 + y1) / 2, 6)

    def thermal_offsets(self) -> dict[str, float]:
        """Per weather class: clear calm nights show the differences most, overcast ones least."""
        return {"extreme": round(self.thermal_offset_c * 1.3, 2), "intermediate": self.thermal_offset_c,
                "damped": round(self.thermal_offset_c * 0.5, 2)}


@dataclass(frozen=True)
class Place:
    """Something at a point: a depot, a sensor, a home, a bin."""

    id: str
    name: str
    lon: float
    lat: float


@dataclass(frozen=True)
class RoadSensor:
    device_id: str
    segment_id: str
    lon: float
    lat: float
    offset_c: float
    bridge: bool


@dataclass(frozen=True)
class Home:
    household_id: str
    device_id: str
    lon: float
    lat: float
    area: str
    damp: bool
    dev_eui: str | None = None             # a LoRaWAN home: its sensor's DevEUI ...
    codec: str | None = None               # ... and the codec that reads it (lorawan.codecs)

    @property
    def f_rsi(self) -> float:
        return 0.5 if self.damp else 0.75          # a cold solid wall against the UK design criterion

    @property
    def sensitivity(self) -> str:
        return "very_sensitive" if self.damp else "sensitive"


@dataclass(frozen=True)
class Bin:
    device_id: str
    lon: float
    lat: float
    area: str
    bin_type: str
    place: str
    volume_l: int
    collection_weekday: int
    fill_per_day: float
    dev_eui: str | None = None             # a LoRaWAN bin: its sensor's DevEUI and codec
    codec: str | None = None


@dataclass(frozen=True)
class WasteDepot:
    depot_id: str
    lon: float
    lat: float
    trucks: int = 3
    capacity_l: int = 16_000
    max_trips: int = 2


@dataclass(frozen=True)
class Town:
    seed: int
    streets: tuple[Street, ...]
    depot: Place
    road_sensors: tuple[RoadSensor, ...]
    gritter_id: str
    gritter_loop: tuple[tuple[float, float], ...]   # (lat, lon), closed, along the distributor roads
    homes: tuple[Home, ...]
    bins: tuple[Bin, ...]
    waste_depot: WasteDepot
    lorawan_homes: tuple[Home, ...] = ()
    lorawan_bins: tuple[Bin, ...] = ()

    @property
    def route_ids(self) -> tuple[str, ...]:
        return tuple(f"{PREFIX}{key}" for key, _ in ROUTES)

    @property
    def device_ids(self) -> tuple[str, ...]:
        return (*(s.device_id for s in self.road_sensors), self.gritter_id, *(h.device_id for h in self.homes),
                *(b.device_id for b in self.bins))

    @property
    def lorawan_device_ids(self) -> tuple[str, ...]:
        """The LoRaWAN devices: no broker account, no agent (their uplinks come through the network server)."""
        return (*(h.device_id for h in self.lorawan_homes), *(b.device_id for b in self.lorawan_bins))

    @property
    def all_homes(self) -> tuple[Home, ...]:
        return (*self.homes, *self.lorawan_homes)

    @property
    def all_bins(self) -> tuple[Bin, ...]:
        return (*self.bins, *self.lorawan_bins)

    def network_geojson(self) -> dict[str, Any]:
        """The road network in the format `cityops roads import` reads (docs/gritting.md)."""
        features: list[dict[str, Any]] = [{
            "type": "Feature", "geometry": {"type": "LineString", "coordinates": [list(c) for c in s.coords]},
            "properties": {"segment_id": s.segment_id, "name": s.name, "priority": s.priority, "width_m": 7.3,
                           "thermal_offset_c": s.thermal_offset_c, "thermal_offsets": s.thermal_offsets(),
                           "bridge": s.bridge, "oneway": s.oneway,
                           **({"route": s.route_id} if s.route_id else {})}}
            for s in self.streets]
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [self.depot.lon,
                                                                                          self.depot.lat]},
                         "properties": {"depot_id": self.depot.id, "name": self.depot.name}})
        routes = [{"route_id": f"{PREFIX}{key}", "name": f"{name} gritting route", "depot_id": self.depot.id,
                   "salt_capacity_kg": SALT_CAPACITY_KG, "vehicles": 1, "max_trips": 4} for key, name in ROUTES]
        return {"type": "FeatureCollection", "features": features, "routes": routes}


class _Grid:
    """Junction positions: a regular grid with a little seeded irregularity."""

    def __init__(self, seed: int):
        rng = rng_for(seed, "town", "grid")
        lon0, lat0 = CENTRE
        self.m_per_deg_lat = 111_195.0
        self.m_per_deg_lon = self.m_per_deg_lat * math.cos(math.radians(lat0))
        half = (SIZE - 1) / 2
        self.nodes: dict[tuple[int, int], tuple[float, float]] = {}
        for row in range(SIZE):
            for col in range(SIZE):
                x = (col - half) * SPACING_M + rng.uniform(-12, 12)
                y = (row - half) * SPACING_M + rng.uniform(-12, 12)
                self.nodes[row, col] = (round(lon0 + x / self.m_per_deg_lon, 6),
                                        round(lat0 + y / self.m_per_deg_lat, 6))

    def offset(self, point: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
        return (round(point[0] + east_m / self.m_per_deg_lon, 6), round(point[1] + north_m / self.m_per_deg_lat, 6))


def _quadrant(row: float, col: float) -> str:
    half = (SIZE - 1) / 2
    return ("n" if row >= half else "s") + ("e" if col >= half else "w")


def _area(row: float, col: float) -> str:
    half = (SIZE - 1) / 2
    if abs(row - half) <= 2.5 and abs(col - half) <= 2.5:
        return AREAS[0]
    return {"nw": AREAS[1], "ne": AREAS[2], "se": AREAS[3], "sw": AREAS[4]}[_quadrant(row, col)]


def _street(grid: _Grid, a: tuple[int, int], b: tuple[int, int]) -> Street:
    horizontal = a[0] == b[0]
    line = a[0] if horizontal else a[1]
    name = ROW_NAMES[line] if horizontal else COLUMN_NAMES[line]
    priority = 1 if line == MAIN else 2 if line in DISTRIBUTORS else 3
    on_route = priority < 3 or line in BUS_ROUTES
    mid_row, mid_col = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    bridge = not horizontal and {a[0], b[0]} == {RIVER_BELOW_ROW, RIVER_BELOW_ROW + 1}
    valley = mid_row >= 10.5 and mid_col <= 2.5                      # the wooded valley, north-west
    cutting = not horizontal and line == MAIN and mid_row >= 10.5    # Bristol Road's cutting
    centre = abs(mid_row - 6.5) <= 1.5 and abs(mid_col - 6.5) <= 1.5
    offset = -2.0 if bridge else -1.8 if valley else -1.2 if cutting else 0.8 if centre else 0.0
    kind = "h" if horizontal else "v"
    segment_id = f"{PREFIX}{kind}{a[0]:02d}{a[1]:02d}"
    way = ONE_WAY_ROWS.get(line, 0) if horizontal and a[1] in ONE_WAY_COLUMNS else 0
    coords = (grid.nodes[b], grid.nodes[a]) if way < 0 else (grid.nodes[a], grid.nodes[b])
    return Street(segment_id, name + (" Bridge" if bridge else ""), priority, coords,
                  f"{PREFIX}{_quadrant(mid_row, mid_col)}" if on_route else None, offset, bridge,
                  valley or cutting, oneway=way != 0)


def _closes(grid: _Grid) -> list[Street]:
    """The dead ends: a residential close off a junction on the town's edge, ending in a turning head."""
    return [Street(f"{PREFIX}c{row:02d}{col:02d}", name, 3, (grid.nodes[row, col],
                                                             grid.offset(grid.nodes[row, col], 0.0, north_m)),
                   None, 0.0, False, False) for name, (row, col), north_m in CLOSES]


def _streets(grid: _Grid) -> list[Street]:
    streets = []
    for row in range(SIZE):
        for col in range(SIZE):
            if col + 1 < SIZE:
                streets.append(_street(grid, (row, col), (row, col + 1)))
            if row + 1 < SIZE and (row != RIVER_BELOW_ROW or col in BRIDGE_COLUMNS):
                streets.append(_street(grid, (row, col), (row + 1, col)))
    return streets + _closes(grid)


def _road_sensors(streets: list[Street], seed: int) -> list[RoadSensor]:
    """Every bridge and shaded road first (the cold spots), then spread over the routes."""
    cold = [s for s in streets if s.bridge or s.shaded]
    others = [s for s in streets if s.route_id and not (s.bridge or s.shaded)]
    rng = rng_for(seed, "town", "sensors")
    rng.shuffle(others)
    chosen = (cold + others)[:ROAD_SENSORS]
    return [RoadSensor(f"{PREFIX}road-{i:02d}", s.segment_id, *s.midpoint, s.thermal_offset_c, s.bridge)
            for i, s in enumerate(sorted(chosen, key=lambda s: s.segment_id))]


def _gritter_loop(grid: _Grid) -> tuple[tuple[float, float], ...]:
    """Round the distributor roads (rows and columns 2 and 10), over two bridges, as (lat, lon)."""
    low, high = DISTRIBUTORS
    path = ([(low, c) for c in range(low, high)] + [(r, high) for r in range(low, high)]
            + [(high, c) for c in range(high, low, -1)] + [(r, low) for r in range(high, low - 1, -1)])
    return tuple((grid.nodes[p][1], grid.nodes[p][0]) for p in path)


def _homes(grid: _Grid, seed: int) -> list[Home]:
    rng = rng_for(seed, "town", "homes")
    homes = []
    for i in range(HOMES):
        point, area = _home_place(grid, rng)
        homes.append(Home(f"{PREFIX}h{i:03d}", f"{PREFIX}frog-{i:03d}", *point, area, damp=i % DAMP_EVERY == 0))
    return homes


def _home_place(grid: _Grid, rng: random.Random) -> tuple[tuple[float, float], str]:
    """A house along a street, set back 25 m either side."""
    row, col = rng.randrange(SIZE), rng.randrange(SIZE - 1)
    frac = rng.uniform(0.2, 0.8)
    (x0, y0), (x1, y1) = grid.nodes[row, col], grid.nodes[row, col + 1]
    point = grid.offset((x0 + frac * (x1 - x0), y0 + frac * (y1 - y0)), 0.0, rng.choice((-25.0, 25.0)))
    return point, _area(row, col + frac)


def dev_eui(oui: str, seed: int, model: int, index: int) -> str:
    """A stable DevEUI: the vendor's OUI, then the town's seed, the model and the device's number."""
    return f"{oui}{seed % 256:02x}{model:02x}{index:06x}"


def _lorawan_homes(grid: _Grid, seed: int) -> list[Home]:
    """The LoRaWAN homes, placed as the others (their own draws: the 60 homes stay where they are)."""
    rng = rng_for(seed, "town", "lorawan-homes")
    homes = []
    for i in range(LORAWAN_HOMES):
        point, area = _home_place(grid, rng)
        homes.append(Home(f"{PREFIX}lw-h{i:02d}", f"{PREFIX}lw-frog-{i:02d}", *point, area, damp=i % DAMP_EVERY == 0,
                          dev_eui=dev_eui(MILESIGHT_OUI, seed, 0x30, i), codec="milesight-em300-th"))
    return homes


_WEEKDAY = {AREAS[0]: 0, AREAS[1]: 1, AREAS[2]: 2, AREAS[3]: 3, AREAS[4]: 4}


def _bin(grid: _Grid, rng: random.Random, i: int, device_id: str, *, in_close: bool = False) -> Bin:
    """A bin on the kerb of a north-south street (or two thirds along a close), with its area's collection day."""
    row, col = rng.randrange(SIZE - 1), rng.randrange(SIZE)
    frac = rng.uniform(0.1, 0.9)
    (x0, y0), (x1, y1) = grid.nodes[row, col], grid.nodes[row + 1, col]
    point = grid.offset((x0 + frac * (x1 - x0), y0 + frac * (y1 - y0)), rng.choice((-6.0, 6.0)), 0.0)
    if in_close:      # drawn like the others (the same sequence), placed in a close
        _, (row, col), north_m = CLOSES[CLOSE_BINS.index(i)]
        point, frac = grid.offset(grid.nodes[row, col], 6.0, north_m * 2 / 3), 0.0
    area = _area(row + frac, col)
    kind = rng.choices(("general", "recycling", "food"), (6, 3, 1))[0]
    place = "town_centre" if area == AREAS[0] else "school" if i % 40 == 7 else ""
    busy = 1.6 if place == "town_centre" else 1.0
    return Bin(device_id, *point, area, kind, place, rng.choice((240, 240, 360, 1100)), _WEEKDAY[area],
               round(rng.uniform(0.05, 0.14) * busy, 3))


def _bins(grid: _Grid, seed: int) -> list[Bin]:
    rng = rng_for(seed, "town", "bins")
    return [_bin(grid, rng, i, f"{PREFIX}bin-{i:03d}", in_close=i in CLOSE_BINS) for i in range(BINS)]


def _lorawan_bins(grid: _Grid, seed: int) -> list[Bin]:
    """The LoRaWAN bins, placed as the others (their own draws: the 300 bins stay where they are)."""
    rng = rng_for(seed, "town", "lorawan-bins")
    bins = []
    for i in range(LORAWAN_BINS):
        milesight = i >= LORAWAN_EM310_FROM
        eui = dev_eui(MILESIGHT_OUI, seed, 0x31, i) if milesight else dev_eui(DRAGINO_OUI, seed, 0x75, i)
        bins.append(replace(_bin(grid, rng, i, f"{PREFIX}lw-bin-{i:02d}"), dev_eui=eui,
                            codec="milesight-em310-udl" if milesight else "dragino-ldds75"))
    return bins


def build_town(seed: int = 1) -> Town:
    """The whole town for a seed."""
    grid = _Grid(seed)
    streets = _streets(grid)
    depot_at = grid.offset(grid.nodes[MAIN - 1, MAIN + 1], 40.0, -30.0)
    waste_at = grid.offset(grid.nodes[0, SIZE - 1], 60.0, -40.0)
    return Town(seed=seed, streets=tuple(streets),
                depot=Place(f"{PREFIX}depot", "Ashbury highways depot", *depot_at),
                road_sensors=tuple(_road_sensors(streets, seed)), gritter_id=f"{PREFIX}gritter-01",
                gritter_loop=_gritter_loop(grid), homes=tuple(_homes(grid, seed)), bins=tuple(_bins(grid, seed)),
                waste_depot=WasteDepot(f"{PREFIX}waste", *waste_at), lorawan_homes=tuple(_lorawan_homes(grid, seed)),
                lorawan_bins=tuple(_lorawan_bins(grid, seed)))
