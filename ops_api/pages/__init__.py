"""The web pages: login, invitation, the householder's home page, the crew's job pages, the
operator's live page, the landlord officers' damp and mould case pages (list, case, dashboard),
and the service worker that keeps the crew's pages working offline.

Each page is a static HTML file (ops_api/pages/html/) with its script and styles under
/static: the pages fetch the JSON API with the session cookie, and a page that is not
logged in sends the browser to /login. Every asset is served from this app (no CDN, no map
tiles), and the Content-Security-Policy says so to the browser too. One exception, for
speed on a poor connection: the crew's job page comes in one response, its styles and
scripts inline (allowed by their CSP hashes) and, for a crew member or staff who may see
the job, the job's JSON as GET /jobs/{id} gives it (ops_api.pages.inline).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from cityops.errors import CityOpsError
from cityops.storage import Database
from ops_api.accounts.roles import Role, User
from ops_api.deps import DB, OptionalUser
from ops_api.pages import inline
from ops_api.routes import jobs as job_routes

HTML = Path(__file__).parent / "html"
STATIC = Path(__file__).parent.parent / "static"

# Same-origin only: scripts, styles, fetches and images come from this app.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the invitation token is in the URL
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def page(name: str) -> FileResponse:
    return FileResponse(HTML / f"{name}.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/login")
async def login() -> FileResponse:
    return page("login")


@router.get("/invite/{token}")
async def invite(token: str) -> FileResponse:
    return page("invite")  # the script reads the token from the address


@router.get("/home")
async def home() -> FileResponse:
    return page("home")


@router.get("/crew")
async def crew() -> FileResponse:
    return page("crew")


JOB_ASSETS = ('<link rel="stylesheet" href="/static/cityops.css">\n'
              '<link rel="modulepreload" href="/static/common.js">\n'
              '<link rel="modulepreload" href="/static/outbox.js">\n'
              '<script type="module" src="/static/job.js"></script>\n')
JOB_ROLES = frozenset((Role.OPERATOR, Role.ADMIN, Role.GRITTING_CREW, Role.WASTE_CREW))
GZIP_FROM_BYTES = 1000


async def _job_for(db: Database, user: User | None, job_id: int) -> dict[str, Any] | None:
    """The job as GET /jobs/{id} gives it to this user, or None (not signed in, or not theirs)."""
    if user is None or user.role not in JOB_ROLES:
        return None
    try:
        return await job_routes.show_job(job_id, db, user)   # the route's own access rules, not a copy
    except CityOpsError:
        return None


@router.get("/crew/jobs/{job_id}")
async def crew_job(job_id: int, request: Request, db: DB, user: OptionalUser) -> Response:
    """The job page in one response (ops_api.pages.inline): its styles and scripts inline and,
    for a signed-in crew member or staff, the job's JSON too; else the page asks for it (preload)."""
    html = (HTML / "job.html").read_text(encoding="utf-8")
    css, script = inline.stylesheet("cityops.css"), inline.bundle("job.js")
    html = html.replace(JOB_ASSETS, f"<style>{css}</style>\n<script type=\"module\">{script}</script>\n")
    job = await _job_for(db, user, job_id)
    if job is not None:
        data = inline.json_in_html(json.dumps(job, separators=(",", ":"), default=str))
        html = re.sub(r'<link rel="preload" href="/jobs/\{job_id\}"[^>]*>\n', "", html)
        html = html.replace("</body>", f'<script type="application/json" id="job-data">{data}</script>\n</body>')
    html = html.replace("{job_id}", str(job_id))
    csp = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "default-src 'self';", f"default-src 'self'; script-src 'self' {inline.csp_hash(script)}; "
                               f"style-src 'self' {inline.csp_hash(css)};")
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": csp, "Vary": "Accept-Encoding, Cookie"}
    if job is not None:   # a crew's own data: never kept by a shared cache on the way
        headers["Cache-Control"] = "private, no-cache"
    body = html.encode("utf-8")
    if "gzip" in request.headers.get("accept-encoding", "") and len(body) >= GZIP_FROM_BYTES:
        body = gzip.compress(body, compresslevel=6)   # no secret in the page: the session is never in it
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


@router.get("/operator")
async def operator() -> FileResponse:
    return page("operator")


@router.get("/landlord")
async def landlord() -> FileResponse:
    return page("landlord")


@router.get("/landlord/cases/{case_id}")
async def landlord_case(case_id: int) -> FileResponse:
    return page("landlord-case")   # the script reads the case's number from the address


@router.get("/landlord/dashboard")
async def landlord_dashboard() -> FileResponse:
    return page("landlord-dashboard")


# What the service worker stores when it installs: the crew's and operator's page shells and
# every asset they load. /crew/jobs/0 (no job in it) is every job's page offline: sw.js
# writes the job's number into it.
PRECACHE = ("/crew", "/crew/jobs/0", "/operator", "/static/cityops.css", "/static/common.js", "/static/crew.js",
            "/static/job.js", "/static/map.js", "/static/outbox.js", "/static/operator.js")


@cache
def release() -> str:
    """A hash of every page and asset: a new release's worker, and so a fresh shell cache."""
    digest = hashlib.sha256()
    for path in sorted([*HTML.glob("*.html"), *STATIC.glob("*")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@router.get("/sw.js")
async def service_worker() -> Response:
    script = (STATIC / "sw.js").read_text().replace("__VERSION__", release()).replace(
        "__PRECACHE__", json.dumps(list(PRECACHE)))
    return Response(script, media_type="text/javascript; charset=utf-8",
                    headers={**SECURITY_HEADERS, "Service-Worker-Allowed": "/"})
