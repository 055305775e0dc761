"""Health: is the database reachable and migrated, is the broker reachable."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from cityops.errors import CityOpsError
from cityops.mqtt import check_broker
from cityops.settings import redact_url
from cityops.storage import READING_TABLES, status
from ops_api.deps import DB

router = APIRouter(tags=["health"])


async def _database_health(db: DB) -> dict[str, Any]:
    try:
        state = await status(db)
        counts = {kind: await db.fetchval(f"SELECT count(*) FROM {spec.table}")
                  for kind, spec in READING_TABLES.items()} if not state.pending else {}
    except CityOpsError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": not state.pending, "backend": state.backend.describe(),
            "applied_migrations": len(state.applied), "pending_migrations": len(state.pending),
            "readings": counts, "url": redact_url(db.url)}


async def _broker_health(url: str) -> dict[str, Any]:
    try:
        await check_broker(url, timeout_s=3.0)
    except CityOpsError as exc:
        return {"ok": False, "error": str(exc), "url": redact_url(url)}
    return {"ok": True, "url": redact_url(url)}


async def _health(request: Request, db: DB) -> dict[str, Any]:
    checks = {"database": await _database_health(db),
              "broker": await _broker_health(request.app.state.mqtt_url)}
    return {"status": "ok" if all(c["ok"] for c in checks.values()) else "degraded", **checks}


@router.get("/health", summary="Service health as JSON (503 when degraded)")
async def health_json(request: Request, db: DB) -> JSONResponse:
    body = await _health(request, db)
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def health_page(request: Request, db: DB) -> HTMLResponse:
    body = await _health(request, db)
    rows = "".join(
        f"<tr><th>{name}</th><td class={'ok' if check['ok'] else 'bad'}>"
        f"{'up' if check['ok'] else 'DOWN'}</td><td>{html.escape(_detail(check))}</td></tr>"
        for name, check in body.items() if isinstance(check, dict))
    page = f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1"><title>CityOps</title>
<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}
td,th{{padding:.4rem .8rem;text-align:left;border-bottom:1px solid #ddd}}
.ok{{color:#0a7d32;font-weight:bold}}.bad{{color:#b00020;font-weight:bold}}</style></head>
<body><h1>CityOps</h1><p>Platform status: <b>{body['status']}</b></p>
<table>{rows}</table><p><a href=/docs>API documentation</a> · <a href=/health>health as JSON</a></p>
</body></html>"""
    return HTMLResponse(page, status_code=200 if body["status"] == "ok" else 503)


def _detail(check: dict[str, Any]) -> str:
    if not check["ok"]:
        return str(check.get("error") or f"{check.get('pending_migrations')} migrations pending")
    parts = [str(check.get("backend") or check.get("url"))]
    if check.get("readings"):
        parts.append("readings: " + ", ".join(f"{k} {v}" for k, v in check["readings"].items()))
    return "; ".join(parts)
