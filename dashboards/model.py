"""A small typed builder for Grafana dashboard JSON (schemaVersion 39, Grafana 10.4/11).

Why our own: grafana-foundation-sdk has no PostgreSQL query type (its builders cover
Prometheus, Loki, Athena, BigQuery, ...), and grafanalib (last release January 2024) has
SQL targets but no geomap panel and emits an older schema. The boards here need two
things only, raw SQL against the PostgreSQL data source and geomap marker layers, so a
few frozen dataclasses that render exactly the JSON Grafana stores are the simplest fit.

Panels are laid out left to right in a 24-column grid, wrapping as needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from shapely import wkt

SCHEMA_VERSION = 39
GRID_COLUMNS = 24

Json = dict[str, Any]
PanelType = Literal["timeseries", "stat", "table", "geomap", "barchart", "bargauge"]


@dataclass(frozen=True)
class DataSource:
    type: str
    uid: str
    name: str

    def ref(self) -> Json:
        return {"type": self.type, "uid": self.uid}


POSTGRES = DataSource("grafana-postgresql-datasource", "cityops-postgres", "CityOps PostgreSQL")
PROMETHEUS = DataSource("prometheus", "cityops-prometheus", "CityOps Prometheus")


@dataclass(frozen=True)
class Sql:
    """A raw SQL query on the PostgreSQL data source."""

    sql: str
    format: Literal["table", "time_series"] = "table"

    def to_json(self, ref_id: str) -> Json:
        return {"refId": ref_id, "datasource": POSTGRES.ref(), "editorMode": "code", "format": self.format,
                "rawQuery": True, "rawSql": self.sql.strip()}


@dataclass(frozen=True)
class PromQL:
    """A Prometheus query (ingest's own metrics, scraped from its /metrics endpoint)."""

    expr: str
    legend: str = ""

    def to_json(self, ref_id: str) -> Json:
        return {"refId": ref_id, "datasource": PROMETHEUS.ref(), "editorMode": "code", "expr": self.expr,
                "legendFormat": self.legend or "__auto", "range": True}


Query = Sql | PromQL


@dataclass(frozen=True)
class Threshold:
    value: float | None  # None: the base colour
    color: str


GREEN_AMBER_RED = (Threshold(None, "green"), Threshold(1, "orange"), Threshold(5, "red"))


@dataclass(frozen=True)
class Panel:
    title: str
    type: PanelType
    queries: tuple[Query, ...]
    description: str = ""
    width: int = 12
    height: int = 8
    unit: str | None = None
    decimals: int | None = None
    thresholds: tuple[Threshold, ...] = ()
    min_interval: str | None = None  # e.g. "1h" for the hourly aggregates
    options: Mapping[str, Any] = field(default_factory=dict)
    overrides: tuple[Json, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.width <= GRID_COLUMNS:
            raise ValueError(f"panel {self.title!r}: width must be 1..{GRID_COLUMNS}")
        if not self.queries:
            raise ValueError(f"panel {self.title!r} has no query")

    @property
    def sql(self) -> list[Sql]:
        return [q for q in self.queries if isinstance(q, Sql)]

    def to_json(self, panel_id: int, x: int, y: int) -> Json:
        defaults: Json = {"custom": {}}
        if self.unit:
            defaults["unit"] = self.unit
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.thresholds:
            defaults["thresholds"] = {"mode": "absolute", "steps": [
                {"color": t.color, "value": t.value} for t in self.thresholds]}
            defaults["color"] = {"mode": "thresholds"}
        source = PROMETHEUS if all(isinstance(q, PromQL) for q in self.queries) else POSTGRES
        out: Json = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "datasource": source.ref(),
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": [q.to_json(chr(ord("A") + i)) for i, q in enumerate(self.queries)],
            "fieldConfig": {"defaults": defaults, "overrides": list(self.overrides)},
            "options": dict(self.options),
        }
        if self.min_interval:
            out["interval"] = self.min_interval
        return out


# --- panel kinds ------------------------------------------------------------------------

def timeseries(title: str, *queries: Query, unit: str | None = None, min_interval: str | None = None,
               description: str = "", width: int = 12, height: int = 8) -> Panel:
    return Panel(title, "timeseries", queries, description, width, height, unit=unit, min_interval=min_interval,
                 options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                          "tooltip": {"mode": "multi", "sort": "desc"}})


def stat(title: str, query: Query, *, unit: str | None = None, description: str = "", width: int = 6,
         height: int = 5, thresholds: tuple[Threshold, ...] = (), fields: str = "") -> Panel:
    return Panel(title, "stat", (query,), description, width, height, unit=unit, thresholds=thresholds,
                 options={"reduceOptions": {"values": True, "calcs": ["lastNotNull"], "fields": fields},
                          "colorMode": "value", "graphMode": "none", "textMode": "value_and_name",
                          "justifyMode": "auto", "orientation": "auto"})


def table(title: str, query: Query, *, description: str = "", width: int = 12, height: int = 8,
          sort_by: str | None = None, overrides: Sequence[Json] = ()) -> Panel:
    options: Json = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return Panel(title, "table", (query,), description, width, height, options=options, overrides=tuple(overrides))


def barchart(title: str, query: Query, *, x_field: str, unit: str | None = None, description: str = "",
             width: int = 12, height: int = 8) -> Panel:
    return Panel(title, "barchart", (query,), description, width, height, unit=unit,
                 options={"xField": x_field, "orientation": "auto", "showValue": "auto",
                          "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False}})


@dataclass(frozen=True)
class MapView:
    lat: float
    lon: float
    zoom: float

    @classmethod
    def from_area_wkt(cls, area_wkt: str) -> MapView:
        """Centre and zoom that frame the council's area (CITYOPS_DEVICES__AREA_WKT)."""
        shape = wkt.loads(area_wkt)
        min_lon, min_lat, max_lon, max_lat = shape.bounds
        span = max(max_lon - min_lon, max_lat - min_lat, 1e-3)
        zoom = 10 if span > 0.2 else 11 if span > 0.1 else 12  # ~ a city, a town, a district
        return cls(round((min_lat + max_lat) / 2, 4), round((min_lon + max_lon) / 2, 4), zoom)


@dataclass(frozen=True)
class MarkerLayer:
    name: str
    color_field: str | None = None  # colour markers by this numeric field (through the thresholds)
    size: int = 6
    lat: str = "lat"
    lon: str = "lon"
    text_field: str | None = None

    def to_json(self, ref_id: str) -> Json:
        color: Json = {"field": self.color_field, "fixed": "dark-green"} if self.color_field else {"fixed": "blue"}
        style: Json = {"size": {"fixed": self.size}, "color": color, "opacity": 0.8,
                       "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"}}
        if self.text_field:
            style["text"] = {"field": self.text_field, "mode": "field"}
            style["textConfig"] = {"fontSize": 10, "offsetY": -10, "textAlign": "center", "textBaseline": "bottom"}
        return {"type": "markers", "name": self.name, "config": {"showLegend": True, "style": style},
                "location": {"mode": "coords", "latitude": self.lat, "longitude": self.lon},
                "filterData": {"id": "byRefId", "options": ref_id}, "tooltip": True}


def geomap(title: str, view: MapView, *layers: tuple[MarkerLayer, Sql], description: str = "",
           thresholds: tuple[Threshold, ...] = (), unit: str | None = None, width: int = 12,
           height: int = 12) -> Panel:
    """A map with one marker layer per query (each query's rows need lat/lon columns)."""
    queries = tuple(query for _, query in layers)
    options = {
        "view": {"id": "coords", "lat": view.lat, "lon": view.lon, "zoom": view.zoom, "allLayers": True},
        "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True, "showScale": True},
        "basemap": {"type": "default", "name": "Basemap", "config": {}},
        "layers": [layer.to_json(chr(ord("A") + i)) for i, (layer, _) in enumerate(layers)],
        "tooltip": {"mode": "details"},
    }
    return Panel(title, "geomap", queries, description, width, height, unit=unit, thresholds=thresholds,
                 options=options)


# --- variables and the board ------------------------------------------------------------

@dataclass(frozen=True)
class QueryVariable:
    """Options from SQL (one text column); multi-select with `All`."""

    name: str
    label: str
    sql: str

    def to_json(self) -> Json:
        return {"type": "query", "name": self.name, "label": self.label, "datasource": POSTGRES.ref(),
                "query": self.sql, "definition": self.sql, "refresh": 2, "sort": 1, "multi": True,
                "includeAll": True, "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "options": [], "hide": 0, "skipUrlSync": False}


@dataclass(frozen=True)
class CustomVariable:
    name: str
    label: str
    values: tuple[str, ...]

    def to_json(self) -> Json:
        options = [{"selected": False, "text": v, "value": v} for v in self.values]
        return {"type": "custom", "name": self.name, "label": self.label, "query": ",".join(self.values),
                "multi": True, "includeAll": True, "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "options": [{"selected": True, "text": "All", "value": "$__all"}, *options], "hide": 0,
                "skipUrlSync": False}


Variable = QueryVariable | CustomVariable


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-24h"
    refresh: str = "1m"
    tags: tuple[str, ...] = ("cityops",)

    @property
    def file_name(self) -> str:
        return f"{self.uid}.json"

    def to_json(self) -> Json:
        panels, x, y, row_height = [], 0, 0, 0
        for number, panel in enumerate(self.panels, start=1):
            if x + panel.width > GRID_COLUMNS:
                x, y, row_height = 0, y + row_height, 0
            panels.append(panel.to_json(number, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": True,
            "graphTooltip": 1,
            "timezone": "browser",
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "refresh": self.refresh,
            "annotations": {"list": []},
            "links": [{"type": "dashboards", "tags": ["cityops"], "asDropdown": True, "title": "CityOps boards",
                       "includeVars": False, "keepTime": True, "icon": "external link", "targetBlank": False,
                       "tooltip": "", "url": ""}],
            "templating": {"list": [v.to_json() for v in self.variables]},
            "panels": panels,
        }
