"""The web pages: login, invitation, the householder's home page and the crew's job pages.

Each page is a static HTML file (ops_api/pages/html/) with its script and styles under
/static: the pages fetch the JSON API with the session cookie, so the server renders
nothing per user and a page that is not logged in sends the browser to /login. Every
asset is served from this app (no CDN, no map tiles), and the Content-Security-Policy
says so to the browser too.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

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


@router.get("/crew/jobs/{job_id}")
async def crew_job(job_id: int) -> FileResponse:
    return page("job")
