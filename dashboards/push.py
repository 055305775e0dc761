"""Create or update the data sources, the folder and the boards on a running Grafana,
through grafana-client (Grafana's HTTP API with a service-account token).

Idempotent: a data source or folder that exists (by uid) is updated or kept, boards are
saved with `overwrite`, so running it again after a change is the upgrade path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException, GrafanaUnauthorizedError

from dashboards.errors import GrafanaError
from dashboards.export import FOLDER_TITLE, FOLDER_UID
from dashboards.model import POSTGRES, PROMETHEUS, Board, Json

log = logging.getLogger("dashboards.push")

T = TypeVar("T")


@dataclass(frozen=True)
class PushResult:
    datasources: tuple[str, ...]  # "created <uid>" / "updated <uid>"
    folder: str
    boards: tuple[str, ...]        # the boards' URLs on Grafana


def postgres_datasource(db_url: str, *, timescaledb: bool) -> Json:
    """The PostgreSQL data source for Grafana's API, from a postgresql:// URL."""
    parts = urlsplit(db_url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise GrafanaError("the data source URL must be postgresql://user:password@host:port/database",
                           hint="pass --db-url with a read-only role for Grafana")
    database = parts.path.lstrip("/") or "postgres"
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    tls: Json = {"tlsConfigurationMethod": "file-path", "sslRootCertFile": unquote(query["sslrootcert"])} \
        if "sslrootcert" in query else {}
    return {
        "name": POSTGRES.name, "type": POSTGRES.type, "uid": POSTGRES.uid, "access": "proxy", "isDefault": True,
        "url": f"{parts.hostname}:{parts.port or 5432}", "user": unquote(parts.username or ""),
        "jsonData": {"database": database, "sslmode": query.get("sslmode", "disable"), **tls, "postgresVersion": 1500,
                     "timescaledb": timescaledb, "timeInterval": "1m", "maxOpenConns": 10, "maxIdleConns": 2},
        "secureJsonData": {"password": unquote(parts.password or "")},
    }


def prometheus_datasource(url: str) -> Json:
    return {"name": PROMETHEUS.name, "type": PROMETHEUS.type, "uid": PROMETHEUS.uid, "access": "proxy",
            "url": url, "jsonData": {"timeInterval": "15s"}}


class GrafanaPusher:
    def __init__(self, url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.api = GrafanaApi.from_url(self.url, credential=token, timeout=timeout_s)

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """Run one API call; grafana-client's and niquests' errors become GrafanaError."""
        try:
            return request()
        except GrafanaUnauthorizedError:
            raise GrafanaError(f"Grafana refused the token ({what}): 401 Unauthorized", status=401) from None
        except GrafanaException as exc:
            raise GrafanaError(f"Grafana refused {what}: {exc.status_code} {exc.message}",
                               status=exc.status_code or None) from None
        except niquests.exceptions.RequestException as exc:
            raise GrafanaError(f"cannot reach Grafana at {self.url} ({what}): {exc}",
                               hint="check --url and that Grafana is running") from None

    def _exists(self, what: str, request: Callable[[], Any]) -> bool:
        try:
            self._call(what, request)
        except GrafanaError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def upsert_datasource(self, datasource: Json) -> str:
        uid = datasource["uid"]
        ds = self.api.datasource
        if self._exists(f"data source {uid}", lambda: ds.get_datasource_by_uid(uid)):
            self._call(f"updating data source {uid}", lambda: ds.update_datasource_by_uid(uid, datasource))
            return f"updated {uid}"
        self._call(f"creating data source {uid}", lambda: ds.create_datasource(datasource))
        return f"created {uid}"

    def ensure_folder(self) -> str:
        folder = self.api.folder
        if self._exists("folder", lambda: folder.get_folder(FOLDER_UID)):
            return f"kept {FOLDER_UID}"
        self._call("creating the folder", lambda: folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID))
        return f"created {FOLDER_UID}"

    def save_board(self, board: Board) -> str:
        payload = {"dashboard": {**board.to_json(), "id": None}, "folderUid": FOLDER_UID, "overwrite": True,
                   "message": "cityops dashboards push"}
        answer = self._call(f"saving board {board.uid}", lambda: self.api.dashboard.update_dashboard(payload))
        path = answer.get("url", f"/d/{board.uid}") if isinstance(answer, dict) else f"/d/{board.uid}"
        return f"{self.url}{path}"

    def push(self, boards: Sequence[Board], datasources: Sequence[Json]) -> PushResult:
        self._call("the health check", self.api.health.check)
        created = tuple(self.upsert_datasource(ds) for ds in datasources)
        folder = self.ensure_folder()
        urls = tuple(self.save_board(board) for board in boards)
        log.info("pushed %d boards to %s", len(urls), self.url)
        return PushResult(created, folder, urls)
