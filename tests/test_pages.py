"""The web pages without a browser: each is served, its assets exist, and nothing is
loaded from outside this app (no CDN, no map tiles, no fonts from elsewhere)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI

from ops_api.pages import HTML, STATIC
from tests.api_helpers import api_client

PAGES = ["/login", "/invite/abc123", "/home", "/crew", "/crew/jobs/1", "/operator", "/landlord", "/landlord/cases/1",
         "/landlord/dashboard"]
# The one absolute URL allowed in an asset: the SVG namespace, an identifier that is never fetched.
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
EXTERNAL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}|@import|url\(\s*['"]?(?!data:|/|#)""")
REFERENCE = re.compile(r"""(?:src|href)="([^"#]+)"|from "([^"]+)"|import\("([^"]+)"\)""")


def _assets() -> list[Path]:
    return sorted([*HTML.glob("*.html"), *STATIC.rglob("*.*")])


def test_there_are_pages_and_assets_to_check() -> None:
    names = {path.name for path in _assets()}
    assert {"login.html", "home.html", "crew.html", "job.html", "invite.html",
            "operator.html", "cityops.css", "common.js", "chart.js", "map.js", "sw.js", "outbox.js"} <= names


@pytest.mark.parametrize("path", _assets(), ids=lambda p: p.name)
def test_no_page_or_asset_refers_to_another_site(path: Path) -> None:
    text = path.read_text(encoding="utf-8").replace(SVG_NAMESPACE, "")
    found = EXTERNAL.findall(text)
    assert not found, f"{path.name} loads from outside the app: {found}"


@pytest.mark.parametrize("path", PAGES)
async def test_each_page_is_served_same_origin_only(app: FastAPI, path: str) -> None:
    async with api_client(app) as client:
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in response.text
        assert '<html lang="en">' in response.text
        # every script, stylesheet and link on the page resolves on this app
        for groups in REFERENCE.findall(response.text):
            ref = next(g for g in groups if g)
            if ref.startswith("/static/"):
                assert (await client.get(ref)).status_code == 200, ref


async def test_every_script_import_resolves(app: FastAPI) -> None:
    async with api_client(app) as client:
        for script in STATIC.glob("*.js"):
            for groups in REFERENCE.findall(script.read_text(encoding="utf-8")):
                ref = next(g for g in groups if g)
                response = await client.get(ref)
                assert response.status_code == 200, f"{script.name} imports {ref}: {response.status_code}"
                assert "javascript" in response.headers["content-type"]


async def test_every_form_field_has_a_label() -> None:
    for page in HTML.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        ids = set(re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', text))
        labelled = set(re.findall(r'<label for="([^"]+)"', text))
        assert ids <= labelled, f"{page.name}: fields without a label: {sorted(ids - labelled)}"


async def test_a_job_page_needs_a_numeric_id_and_unknown_assets_are_404(app: FastAPI) -> None:
    async with api_client(app) as client:
        assert (await client.get("/crew/jobs/not-a-number")).status_code == 422
        assert (await client.get("/static/nothing-here.js")).status_code == 404
        assert (await client.get("/static/../pages/__init__.py")).status_code == 404


def test_the_pages_use_the_api_routes_they_rely_on() -> None:
    """The JSON routes the scripts call (the contract in docs/api.md) are named as written."""
    scripts = "\n".join(p.read_text(encoding="utf-8") for p in STATIC.glob("*.js"))
    for route in ("/auth/login", "/auth/me", "/auth/logout", "/auth/invitations/accept", "/households/me",
                  "/households/me/history?hours=", "/households/me/diary", "/jobs", "/start", "/complete",
                  "/sheet"):
        assert route in scripts, route
