"""The Grafana boards: every panel's SQL, expanded as Grafana expands it, returns rows from a
real database filled with a small simulated city; the committed JSON is what the code
builds; `push` creates and updates through grafana-client against a fake Grafana (a real
local HTTP server that records what it was sent)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import yaml

from cityops.settings import StorageSettings
from cityops.storage import Database, migrate
from cityops.storage.roles import role_url
from dashboards.check import PanelRun, run_boards
from dashboards.errors import GrafanaError
from dashboards.export import rendered_files
from dashboards.model import SCHEMA_VERSION
from dashboards.push import GrafanaPusher, postgres_datasource, prometheus_datasource
from tests.conftest import scratch_database
from tests.dashboards_helpers import BOARDS, NOW, SQL_QUERIES, VIEW, seed
from tests.db_role_helpers import connect_as

ROOT = Path(__file__).parent.parent


# --- a small simulated city -------------------------------------------------------------





@pytest.fixture(scope="module")
async def city(postgres_admin_url: str) -> AsyncIterator[Database]:
    """A database of its own (other tests' rows would make empty panels pass), migrated and seeded
    by the owner, then opened as Grafana's role: the boards read what that role may read."""
    async with scratch_database(postgres_admin_url) as url, Database.connect(url) as owner:
        await migrate(owner, StorageSettings())
        await seed(owner)
        async with connect_as(url, "grafana") as grafana:
            yield grafana


@pytest.fixture(scope="module")
async def panel_runs(city: Database) -> dict[tuple[str, str, str], PanelRun]:
    assert await city.fetchval("SELECT current_user") == "cityops_grafana"
    runs = await run_boards(city, BOARDS, NOW - timedelta(hours=24), NOW + timedelta(minutes=1))
    return {(r.board, r.panel, r.ref_id): r for r in runs}


@pytest.mark.parametrize(("board", "panel", "ref_id"), SQL_QUERIES, ids=[f"{b}/{p}/{r}" for b, p, r in SQL_QUERIES])
async def test_every_panel_query_returns_rows(panel_runs: dict[tuple[str, str, str], PanelRun], board: str,
                                              panel: str, ref_id: str) -> None:
    run = panel_runs[(board, panel, ref_id)]
    assert run.error is None, f"{run.error}\n{run.sql}"
    assert run.rows > 0, f"no rows from:\n{run.sql}"
    assert "$" not in run.sql.replace("$__all", ""), "a macro or variable was left unexpanded"


async def test_a_new_installation_checks_cleanly_skipping_panels_whose_variables_have_no_data(
        postgres_admin_url: str) -> None:
    async with scratch_database(postgres_admin_url) as url, Database.connect(url) as db:
        await migrate(db, StorageSettings())
        async with connect_as(url, "grafana") as grafana:
            runs = await run_boards(grafana, BOARDS, NOW - timedelta(hours=24), NOW)
    assert [r for r in runs if r.error] == []
    skipped = [r for r in runs if r.skipped]
    assert skipped and all(r.board == "cityops-damp" and "variable area" in (r.skipped or "") for r in skipped)
    assert len(runs) == len(SQL_QUERIES)


async def test_the_area_variable_filters_homes_even_with_a_quote_in_a_name(city: Database) -> None:
    from dataclasses import replace

    from dashboards.boards.damp import WORST_HOMES
    from dashboards.macros import QueryContext, Selection, expand

    ctx = QueryContext(NOW - timedelta(days=1), NOW + timedelta(minutes=1),
                       variables={"area": Selection.many(["St John's"])})
    rows = await city.fetch(expand(WORST_HOMES.sql, ctx))
    assert [(r["household"], r["area"]) for r in rows] == [("h2", "St John's")]
    rows = await city.fetch(expand(WORST_HOMES.sql, replace(ctx, variables={"area": Selection.all(
        ["north", "St John's"])})))
    assert [r["household"] for r in rows] == ["h1", "h2"]  # worst first: high before medium


async def test_panels_read_the_latest_gritting_run_only(city: Database, postgres_admin_url: str) -> None:
    from dashboards.boards.roads import ROUTES_TO_SEND
    from dashboards.macros import QueryContext, expand

    admin = urlsplit(postgres_admin_url)
    owner = await asyncpg.connect(role_url(city.url, admin.username or "postgres", admin.password))
    older = await owner.fetchval("INSERT INTO gritting_runs (computed_at, as_of, window_start, window_end, inputs, "
                                "warnings) VALUES (now() - interval '1 day', now(), now(), now(), '{}', '[]') "
                                "RETURNING run_id")
    try:
        rows = await city.fetch(expand(ROUTES_TO_SEND.sql, QueryContext(NOW - timedelta(days=1), NOW)))
        assert rows == []  # the newest run decided nothing yet: the board must not show an older run's routes
    finally:
        await owner.execute("DELETE FROM gritting_runs WHERE run_id = $1", older)
        await owner.close()


async def test_the_cases_board_counts_without_a_household_text_or_name(city: Database) -> None:
    from dashboards.boards.cases import MILESTONES, WAITING
    from dashboards.macros import QueryContext, expand

    columns = {r["column_name"] for r in await city.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'reporting' "
        "AND table_name IN ('damp_cases_monthly', 'damp_case_milestones')")}
    assert columns.isdisjoint({"household_id", "label", "home_label", "category_reason", "summary", "details",
                               "opened_by", "by_user", "closed_reason", "name", "suggestion"})
    ctx = QueryContext(NOW - timedelta(days=1), NOW + timedelta(minutes=1))
    waiting = await city.fetchrow(expand(WAITING.sql, ctx))
    assert waiting is not None and (waiting["suggestions to triage"], waiting["open cases"]) == (1, 1)  # the seed
    [step] = await city.fetch(expand(MILESTONES.sql, ctx))
    # the seed's case: aware 20 hours before NOW, investigated 2 hours before NOW: 18 hours
    assert (step["landlord"], step["milestone"], step["reached"]) == ("la-1", "investigated", 1)
    assert float(step["median hours from awareness"]) == 18.0


def test_time_series_on_readings_use_the_hourly_aggregates() -> None:
    for board in BOARDS:
        if board.uid == "cityops-ingest":
            continue  # by commit time (received_at), which the aggregates do not keep
        for panel in board.panels:
            for query in panel.sql:
                if query.format == "time_series":
                    assert re.search(r"\breporting\.(readings_per_hour|\w*hourly)\b", query.sql), panel.title
                    assert panel.min_interval == "1h", panel.title


def test_boards_are_schema_39_with_unique_ids_and_a_laid_out_grid() -> None:
    uids = [b.uid for b in BOARDS]
    assert len(set(uids)) == len(uids) == 6
    for board in BOARDS:
        doc = board.to_json()
        assert doc["schemaVersion"] >= SCHEMA_VERSION and doc["uid"] == board.uid
        ids = [p["id"] for p in doc["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in doc["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24 and panel["targets"]
            assert all(t["refId"] for t in panel["targets"])
        cells = set()  # no two panels overlap
        for panel in doc["panels"]:
            g = panel["gridPos"]
            area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & area, panel["title"]
            cells |= area
    names = {v["name"] for b in BOARDS for v in b.to_json()["templating"]["list"]}
    assert names == {"area", "kind"}
    maps = [p for b in BOARDS for p in b.to_json()["panels"] if p["type"] == "geomap"]
    assert len(maps) >= 5 and all(layer["location"]["mode"] == "coords" for m in maps
                                  for layer in m["options"]["layers"])


def test_panel_sql_has_no_comments_grafana_would_strip() -> None:
    for board in BOARDS:
        for panel in board.panels:
            for query in panel.sql:
                assert "--" not in query.sql and "/*" not in query.sql, panel.title


# --- export -----------------------------------------------------------------------------

def test_the_committed_files_are_what_the_code_builds(tmp_path: Path) -> None:
    from dashboards.export import export

    result = export(tmp_path, VIEW)
    committed = ROOT / "deploy" / "grafana"
    for path in result.files:
        relative = path.relative_to(tmp_path)
        assert (committed / relative).read_text() == path.read_text(), \
            f"deploy/grafana/{relative} is stale: run `cityops dashboards export`"
    on_disk = {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()}
    assert on_disk == set(rendered_files(BOARDS)), "deploy/grafana holds files the code does not build"


def test_provisioning_files_have_grafanas_structure() -> None:
    files = rendered_files(BOARDS)
    sources = yaml.safe_load(files[Path("provisioning/datasources/cityops.yaml")])
    assert sources["apiVersion"] == 1
    by_uid = {d["uid"]: d for d in sources["datasources"]}
    postgres = by_uid["cityops-postgres"]
    assert postgres["type"] == "grafana-postgresql-datasource" and postgres["access"] == "proxy"
    assert set(postgres["jsonData"]) >= {"database", "sslmode", "timescaledb"}
    assert postgres["secureJsonData"]["password"].startswith("${")  # from the environment, never committed
    assert by_uid["cityops-prometheus"]["type"] == "prometheus"
    providers = yaml.safe_load(files[Path("provisioning/dashboards/cityops.yaml")])
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
    used = {t["datasource"]["uid"] for b in BOARDS for p in b.to_json()["panels"] for t in p["targets"]}
    assert used <= set(by_uid)


# --- push against a fake Grafana ----------------------------------------------------------

class FakeGrafana(BaseHTTPRequestHandler):
    """Grafana's API as far as push uses it; remembers what exists and records every request."""

    state: dict[str, Any]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        state = self.state
        state["requests"].append((method, self.path, self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") != f"Bearer {state['token']}":
            return self._answer(401, {"message": "Unauthorized"})
        path = self.path
        if (method, path) == ("GET", "/api/frontend/settings"):  # grafana-client's health check
            return self._answer(200, {"buildInfo": {"version": "11.2.0"}})
        if method == "GET" and path.startswith("/api/datasources/uid/"):
            uid = path.rsplit("/", 1)[1]
            found = state["datasources"].get(uid)
            return self._answer(200, found) if found else self._answer(404, {"message": "Data source not found"})
        if (method, path) == ("POST", "/api/datasources"):
            state["datasources"][body["uid"]] = body
            return self._answer(200, {"message": "Datasource added", "id": 1, "datasource": body})
        if method == "PUT" and path.startswith("/api/datasources/uid/"):
            state["datasources"][path.rsplit("/", 1)[1]] = body
            return self._answer(200, {"message": "Datasource updated"})
        if method == "GET" and path.startswith("/api/folders/"):
            uid = path.rsplit("/", 1)[1]
            return (self._answer(200, {"uid": uid}) if uid in state["folders"]
                    else self._answer(404, {"message": "folder not found"}))
        if (method, path) == ("POST", "/api/folders"):
            state["folders"].add(body["uid"])
            return self._answer(200, {"uid": body["uid"], "title": body["title"]})
        if (method, path) == ("POST", "/api/dashboards/db"):
            uid = body["dashboard"]["uid"]
            state["dashboards"][uid] = body
            return self._answer(200, {"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": 1})
        return self._answer(404, {"message": "no route"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


@pytest.fixture
def grafana() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"token": "glsa_test", "requests": [], "datasources": {}, "folders": set(),
                             "dashboards": {}}
    handler = type("Handler", (FakeGrafana,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def test_a_verified_database_url_gives_grafana_the_ca_to_verify_with() -> None:
    """sslmode=verify-full&sslrootcert=... as the services use it becomes Grafana's file-path TLS
    (jsonData sslmode, tlsConfigurationMethod, sslRootCertFile: Grafana's PostgreSQL data source docs)."""
    source = postgres_datasource("postgresql://r:p@timescaledb:5432/cityops?sslmode=verify-full"
                                 "&sslrootcert=/cityops/pki/ca.pem", timescaledb=True)
    assert {k: source["jsonData"][k] for k in ("sslmode", "tlsConfigurationMethod", "sslRootCertFile")} == \
        {"sslmode": "verify-full", "tlsConfigurationMethod": "file-path", "sslRootCertFile": "/cityops/pki/ca.pem"}
    plain = postgres_datasource("postgresql://r:p@localhost/cityops", timescaledb=False)
    assert plain["jsonData"]["sslmode"] == "disable" and "sslRootCertFile" not in plain["jsonData"]


def test_push_creates_then_updates_data_sources_folder_and_boards(grafana: tuple[str, dict[str, Any]]) -> None:
    url, state = grafana
    sources = [postgres_datasource("postgresql://grafana_reader:p%40ss@db.example:5433/cityops?sslmode=require",
                                   timescaledb=True), prometheus_datasource("http://prometheus:9090")]
    first = GrafanaPusher(url, "glsa_test").push(BOARDS, sources)
    assert first.datasources == ("created cityops-postgres", "created cityops-prometheus")
    assert first.folder == "created cityops" and len(first.boards) == 6
    postgres = state["datasources"]["cityops-postgres"]
    assert postgres["url"] == "db.example:5433" and postgres["user"] == "grafana_reader"
    assert postgres["secureJsonData"] == {"password": "p@ss"}
    assert postgres["jsonData"]["database"] == "cityops" and postgres["jsonData"]["sslmode"] == "require"
    saved = state["dashboards"]["cityops-roads"]
    assert saved["overwrite"] is True and saved["folderUid"] == "cityops" and saved["dashboard"]["id"] is None
    assert saved["dashboard"]["panels"] == next(b for b in BOARDS if b.uid == "cityops-roads").to_json()["panels"]

    second = GrafanaPusher(url, "glsa_test").push(BOARDS, sources)
    assert second.datasources == ("updated cityops-postgres", "updated cityops-prometheus")
    assert second.folder == "kept cityops"
    methods = [(m, p) for m, p, _, _ in state["requests"]]
    assert methods.count(("POST", "/api/folders")) == 1
    assert ("PUT", "/api/datasources/uid/cityops-postgres") in methods
    assert all(auth == "Bearer glsa_test" for _, _, auth, _ in state["requests"])


def test_push_with_a_wrong_token_or_no_grafana_is_a_clear_error(grafana: tuple[str, dict[str, Any]]) -> None:
    url, state = grafana
    with pytest.raises(GrafanaError, match="401") as refused:
        GrafanaPusher(url, "wrong").push(BOARDS, [])
    assert refused.value.status == 401 and "service account" in refused.value.hint
    assert state["dashboards"] == {}
    from cityops.embedded.process import free_port

    with pytest.raises(GrafanaError, match="cannot reach Grafana"):
        GrafanaPusher(f"http://127.0.0.1:{free_port()}", "t", timeout_s=2).push(BOARDS, [])
    with pytest.raises(GrafanaError, match="postgresql://"):
        postgres_datasource("mysql://x@y/z", timescaledb=False)
