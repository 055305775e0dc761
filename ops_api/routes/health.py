"""Health: `GET /health` (JSON) and `GET /` (a page), from the cached probe (ops_api.healthcheck).

Anyone gets `{"status": "ok" | "degraded"}` (503 when degraded): enough for a load balancer
or an uptime monitor, nothing about hosts, accounts or versions. Operators and admins get
each service's details too (back end, migrations, redacted URLs, the error when down).
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from ops_api.deps import OptionalUser, Role, User
from ops_api.healthcheck import HealthCache, Report

router = APIRouter(tags=["health"])
NO_STORE = {"Cache-Control": "no-store"}


def _is_staff(user: User | None) -> bool:
    return user is not None and user.role in (Role.OPERATOR, Role.ADMIN)


async def _report(request: Request) -> Report:
    cache: HealthCache = request.app.state.health
    return await cache.get()


def _body(report: Report, staff: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"status": report.status}
    if staff:
        body |= {"checked_at": report.checked_at.isoformat(), **report.checks}
    return body


@router.get("/health", summary="Service health: ok or degraded (503); details for operators and admins")
async def health_json(request: Request, user: OptionalUser) -> JSONResponse:
    report = await _report(request)
    return JSONResponse(_body(report, _is_staff(user)), status_code=200 if report.ok else 503, headers=NO_STORE)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def health_page(request: Request, user: OptionalUser) -> HTMLResponse:
    report = await _report(request)
    rows = "".join(
        f"<tr><th>{name}</th><td class={'ok' if check['ok'] else 'bad'}>"
        f"{'up' if check['ok'] else 'DOWN'}</td><td>{html.escape(_detail(check))}</td></tr>"
        for name, check in report.checks.items()) if _is_staff(user) else ""
    page = f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1"><title>CityOps</title>
<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}
td,th{{padding:.4rem .8rem;text-align:left;border-bottom:1px solid #ddd}}
.ok{{color:#0a7d32;font-weight:bold}}.bad{{color:#b00020;font-weight:bold}}</style></head>
<body><h1>CityOps</h1><p>Platform status: <b>{report.status}</b></p>
<table>{rows}</table><p><a href=/login>Sign in</a> · <a href=/docs>API documentation</a> ·
<a href=/health>health as JSON</a></p>
</body></html>"""
    return HTMLResponse(page, status_code=200 if report.ok else 503, headers=NO_STORE)


def _detail(check: dict[str, Any]) -> str:
    if not check["ok"]:
        return str(check.get("error") or f"{check.get('pending_migrations')} migrations pending")
    return str(check.get("backend") or check.get("url"))
