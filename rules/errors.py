"""The rules package's exceptions.

    CityOpsError                   (cityops.errors)
     +-- RulesError                every error the rules raise on purpose
          +-- InvalidReading       a value no sensor could mean: RH outside 0..100, a fraction
          |                        passed as percent, a temperature that is not a number
          +-- InvalidHomeSettings  a home's fRsi or mould sensitivity class that cannot work
          +-- InvalidDiaryEntry    an activity the diary does not know, or a time that is not one
          +-- InvalidBinSetup      a bin calibration that cannot work (blind zone below full, depth <= 0)
          +-- InvalidBinsFile      a bins or readings CSV for `cityops bins assess` (names line and field)
          +-- RoutingError         a collection plan or CVRPLIB instance that cannot be solved as given
          |    +-- InvalidInstance     a .vrp file or plan input that is malformed or impossible
          |    +-- InvalidArcRouting   a road graph, task list or fleet arc routing cannot use
          |         +-- UnreachableTask    a required edge the depot cannot reach and get back from
          +-- GrittingError        road network, road-weather forecast or gritting settings
               +-- InvalidRoadNetwork  a network GeoJSON that cannot be imported (names the feature)
               +-- InvalidForecast     a forecast file that cannot be imported (names the row)
               +-- InvalidRateMatrix   a spread-rate matrix (a council's JSON) that cannot be used
               +-- InvalidScenario     a `roads decide` scenario file that cannot be run (names the field)
               +-- DecisionLogError    an officer's acknowledgement or override, or a log period, refused

Each carries fields (`quantity`, `value`, `setting`) besides its text, and `hint`.
"""

from __future__ import annotations

from cityops.errors import CityOpsError


class RulesError(CityOpsError):
    """Base of the rules' deliberate errors."""


class InvalidReading(RulesError):
    hint = "relative humidity is a percentage 0..100 and temperatures are in degC"

    def __init__(self, message: str, *, quantity: str, value: float | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.quantity = quantity
        self.value = value


class InvalidHomeSettings(RulesError):
    hint = "fRsi is between 0 and 1 (0.75 is the UK design value); see docs/damp.md for the classes"

    def __init__(self, message: str, *, setting: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.setting = setting


class InvalidDiaryEntry(RulesError):
    hint = "activities: shower, cooking, drying_clothes, windows_opened, heating_on, heating_off"


class InvalidBinSetup(RulesError):
    hint = ("sensor_height_mm is the sensor's height above the bottom of the empty bin, at least bin_depth_mm, "
            "the depth the bin holds from the full line down")

    def __init__(self, message: str, *, device_id: str | None = None, setting: str,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.device_id = device_id
        self.setting = setting


class InvalidBinsFile(RulesError):
    """A CSV `cityops bins assess` cannot read; `line` (1 = the header) and `field` name the culprit."""

    hint = "see docs/bins.md, Assessing bins from files, for the columns"

    def __init__(self, message: str, *, source: str, line: int | None = None, field: str | None = None,
                 hint: str | None = None) -> None:
        where = ", ".join(part for part in (source, f"line {line}" if line else "", field or "") if part)
        super().__init__(f"{where}: {message}", hint=hint)
        self.source, self.line, self.field = source, line, field


class RoutingError(RulesError):
    hint = "see docs/bins.md: trucks, depot, shift and the bins to collect"


class InvalidInstance(RoutingError):
    def __init__(self, message: str, *, source: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.source = source


class GrittingError(RulesError):
    hint = "see docs/gritting.md: the road network file, forecasts and the gritting settings"


class InvalidRoadNetwork(GrittingError):
    """A road network file that cannot be imported as given; `feature` names the culprit."""

    hint = ("a FeatureCollection of LineString roads (id, name, priority 1..3) in lon/lat (EPSG:4326), "
            "depots as Points with depot_id, and a routes list; see docs/gritting.md")

    def __init__(self, message: str, *, source: str, feature: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.source = source
        self.feature = feature


class InvalidForecast(GrittingError):
    """A road-weather forecast file that cannot be imported; `row` names the line or entry."""

    hint = ("CSV or JSON rows with sensor_id or segment_id, valid_at (ISO 8601 with offset), rst_c, and optionally "
            "air_temp_c, dew_point_c or rh_pct, precip (none, rain, snow, light_snow, heavy_snow, freezing_rain)")

    def __init__(self, message: str, *, source: str, row: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.source = source
        self.row = row


class InvalidArcRouting(RoutingError):
    hint = "see docs/routing.md: the road graph, the tasks (required edges) and the vehicles"


class UnreachableTask(InvalidArcRouting):
    hint = "check the segment's end nodes and one-way flags: it must connect to the depot both ways"

    def __init__(self, message: str, *, edge_id: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.edge_id = edge_id


class DecisionLogError(GrittingError):
    """The decision log refuses an acknowledgement, an override or a period; `field` names the culprit."""

    hint = "see docs/gritting.md, The decision log"

    def __init__(self, message: str, *, field: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class InvalidRateMatrix(GrittingError):
    hint = "see docs/gritting.md, Spread rates, for the matrix file's shape"


class InvalidScenario(GrittingError):
    """A scenario file for `cityops roads decide`; `field` names where (e.g. sensors[2].readings[5].ts)."""

    hint = "see docs/gritting.md, Deciding on a file, for the scenario format"

    def __init__(self, message: str, *, field: str, hint: str | None = None) -> None:
        super().__init__(f"{field}: {message}", hint=hint)
        self.field = field
