"""Open data: public, aggregated, anonymised; no sign-in.

    GET /open                                  what is published, with links
    GET /open/road-temperatures.geojson|.csv   per road segment: estimated surface temperature now,
                                               the coldest ahead and when, surface state, action
    GET /open/bin-fill.geojson|.csv?by=        per bin (default) or per depot
    GET /open/damp-areas.json|.csv?period=     damp risk per area, one calendar week's published
                                               snapshot (rules.disclosure: withheld, suppressed, rounded)

Never a household's readings, id or location.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ops_api.deps import DB
from ops_api.errors import NotFound
from ops_api.queries import open_data as q

router = APIRouter(prefix="/open", tags=["open data"])
CACHE = {"Cache-Control": "public, max-age=300"}
By = Literal["bin", "depot"]


def _geojson(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, media_type="application/geo+json", headers=CACHE)


def _csv(text: str, name: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={**CACHE, "Content-Disposition": f'inline; filename="{name}.csv"'})


@router.get("", summary="The open data sets")
async def index() -> dict[str, Any]:
    return {"licence": "Open Government Licence v3.0", "datasets": [
        {"name": "road-temperatures", "formats": ["/open/road-temperatures.geojson", "/open/road-temperatures.csv"],
         "about": "estimated road surface temperature per segment from the latest gritting run"},
        {"name": "bin-fill", "formats": ["/open/bin-fill.geojson", "/open/bin-fill.csv"],
         "about": "how full each public bin is (?by=depot for totals per depot)"},
        {"name": "damp-areas", "formats": ["/open/damp-areas.json", "/open/damp-areas.csv"],
         "about": "damp and mould risk per area, one snapshot per calendar week (?period=YYYY-MM-DD, its Monday); "
                  "small areas withheld, small and dominant cells suppressed, numbers rounded to 5"}]}


@router.get("/road-temperatures.geojson", summary="Road surface temperatures per segment (GeoJSON)",
            response_class=JSONResponse)
async def road_geojson(db: DB) -> JSONResponse:
    return _geojson(q.feature_collection(await q.road_temperatures(db), "geometry"))


@router.get("/road-temperatures.csv", summary="Road surface temperatures per segment (CSV)", response_class=Response)
async def road_csv(db: DB) -> Response:
    return _csv(q.to_csv(await q.road_temperatures(db), q.ROAD_COLUMNS), "road-temperatures")


async def _bins(db: DB, by: By) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    if by == "depot":
        return await q.bin_fill_by_depot(db), q.DEPOT_COLUMNS
    return await q.bin_fill(db), q.BIN_COLUMNS


@router.get("/bin-fill.geojson", summary="Bin fill per bin or per depot (GeoJSON)", response_class=JSONResponse)
async def bins_geojson(db: DB, by: By = "bin") -> JSONResponse:
    rows, columns = await _bins(db, by)
    return _geojson(q.feature_collection([{k: r[k] for k in columns} for r in rows], "point", by=by))


@router.get("/bin-fill.csv", summary="Bin fill per bin or per depot (CSV)", response_class=Response)
async def bins_csv(db: DB, by: By = "bin") -> Response:
    rows, columns = await _bins(db, by)
    return _csv(q.to_csv(rows, columns), f"bin-fill-by-{by}")


async def _damp(db: DB, period: date | None) -> dict[str, Any]:
    snapshot, starts = await q.damp_snapshot(db, period)
    if snapshot is None and period is not None:
        raise NotFound(f"no damp statistics published for the week of {period.isoformat()}",
                       hint="periods start on a Monday; GET /open/damp-areas.json lists them")
    return {"period": None if snapshot is None else {
                "start": snapshot.period_start.isoformat(), "end": snapshot.period_end.isoformat(),
                "computed_at": snapshot.computed_at.isoformat()},
            "periods": [s.date().isoformat() for s in starts],
            "policy": None if snapshot is None else snapshot.policy,
            "areas": [] if snapshot is None else snapshot.rows}


@router.get("/damp-areas.json", summary="Damp risk statistics per area, one week's snapshot (JSON)")
async def damp_json(db: DB, period: date | None = None) -> JSONResponse:
    return JSONResponse(await _damp(db, period), headers=CACHE)


@router.get("/damp-areas.csv", summary="Damp risk statistics per area, one week's snapshot (CSV)",
            response_class=Response)
async def damp_csv(db: DB, period: date | None = None) -> Response:
    body = await _damp(db, period)
    week = body["period"]["start"][:10] if body["period"] else "none"
    return _csv(q.to_csv(body["areas"], q.DAMP_COLUMNS), f"damp-areas-{week}")
