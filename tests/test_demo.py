"""`cityops demo` as a user runs it: starts everything, serves health, Ctrl-C stops all."""

import asyncio
import signal
import subprocess
import sys

import asyncpg
import httpx
import psutil
import pytest

from cityops.embedded.process import free_port
from tests.demo_helpers import demo_env, wait_for_line

pytestmark = pytest.mark.embedded






def start_demo(data_dir, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cityops_cli", "demo"], env=demo_env(data_dir, port),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_demo_starts_serves_health_and_stops_cleanly_on_ctrl_c(tmp_path) -> None:
    port = free_port()
    with start_demo(tmp_path, port) as proc:
        try:
            _run_and_interrupt(proc, port)
        finally:
            if proc.poll() is None:
                proc.kill()


def test_a_killed_demo_leaves_no_orphan_services(tmp_path) -> None:
    with start_demo(tmp_path, free_port()) as proc:
        wait_for_line(proc, "ready: http://")
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.kill()  # SIGKILL: no chance to clean up; the children must go by themselves
        proc.wait()
        _, alive = psutil.wait_procs(children, timeout=15)
        assert [p.pid for p in alive] == []


def _run_and_interrupt(proc: subprocess.Popen[str], port: int) -> None:
    output = wait_for_line(proc, "ready: http://")
    assert any("starting PostgreSQL" in line for line in output)
    assert any("migrated" in line for line in output)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 2  # the postmaster with its workers, and Mosquitto when on PATH
    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert "stopped" in (proc.stdout.read() if proc.stdout else "")
    _, alive = psutil.wait_procs(children, timeout=10)
    assert [c.pid for c in alive if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []


async def test_the_demo_refuses_to_seed_its_logins_into_a_database_it_did_not_start(
        fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 18: `cityops demo` with CITYOPS_DATABASE_URL pointing at a real database (a council's) would
    seed five logins with published passwords; it refuses unless told in so many words, and touches nothing."""
    from cityops.settings import get_settings
    from cityops_cli.main import main

    monkeypatch.setenv("CITYOPS_DATABASE_URL", fresh_database_url)
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(main, ["demo"]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "refusing to seed the demo town" in err and "--seed-demo-logins-into-this-database" in err
    connection = await asyncpg.connect(fresh_database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await connection.close()
