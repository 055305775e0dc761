"""`cityops demo` as a user runs it: starts everything, serves health, Ctrl-C stops all."""

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from cityops.embedded.process import free_port
from tests.demo_helpers import demo_env, wait_for_line

pytestmark = pytest.mark.embedded
LORAWAN_FIRST = "first LoRaWAN readings stored"
LORAWAN_GAP = "gap in its device's frame counter"






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


@pytest.mark.timeout(600)
def test_the_demo_s_lorawan_devices_come_through_the_simulated_chirpstack(tmp_path: Path) -> None:
    """Issue 22: the town's LoRaWAN homes and bins publish through the simulated ChirpStack; `cityops
    lorawan run` stores their readings (the network's receive time, time_source 'network', as
    migration 0032 defines it), counts a lost frame as a gap and stores a frame heard twice once."""
    port = free_port()
    env = demo_env(tmp_path, port)
    with subprocess.Popen([sys.executable, "-m", "cityops_cli", "demo"], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        try:
            seen = wait_for_line(proc, "starting the town")
            assert "LoRaWAN homes" in seen[-1] and "simulated ChirpStack" in seen[-1]
            seen = wait_for_line(proc, LORAWAN_FIRST, timeout_s=300)
            if not any(LORAWAN_GAP in line for line in seen):
                wait_for_line(proc, LORAWAN_GAP, timeout_s=120)
            url = f"postgresql://postgres@127.0.0.1:{env['CITYOPS_EMBEDDED__POSTGRES_PORT']}/cityops"
            progress = tmp_path / "demo" / "chirpstack-progress.json"
            copied = _first_copy_stored(url, progress)
            facts = asyncio.run(_lorawan_facts(url, copied))
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    # democity.town: 4 EM300-TH homes (frog_readings), 6 LDDS75 / EM310-UDL bins (bin_readings)
    assert facts["frog_network"] > 0 and facts["bin_network"] > 0
    assert facts["frog_other"] == facts["bin_other"] == 0     # no device timestamps in these uplinks
    assert facts["gaps"] > 0                                  # democity.chirpstack LOST_CHANCE
    assert facts["copied_rows"] == 1                          # sent twice (two gateways), stored once
    assert facts["dead_letters"] == 0


def _first_copy_stored(url: str, progress: Path, timeout_s: float = 120) -> tuple[str, int]:
    """A frame the simulated ChirpStack published twice, once the integration has logged a later frame of
    that device (so both copies, published before it on one QoS 1 stream, have been judged)."""
    async def logged(device: str, f_cnt: int) -> bool:
        connection = await asyncpg.connect(url)
        try:
            return bool(await connection.fetchval(
                "SELECT count(*) FROM lorawan_uplinks WHERE device_id = $1 AND f_cnt > $2", device, f_cnt))
        finally:
            await connection.close()

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            copies = json.loads(progress.read_text())["copied"]
        except (OSError, ValueError):
            copies = []
        for device, f_cnt in copies:
            if asyncio.run(logged(device, f_cnt)):
                return device, f_cnt
        time.sleep(0.5)  # polling the integration's state, with a deadline
    raise AssertionError(f"no frame published twice was logged within {timeout_s} s")


async def _lorawan_facts(url: str, copied: tuple[str, int]) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM frog_readings WHERE device_id LIKE 'demo-lw-%' "
            "        AND time_source = 'network') AS frog_network, "
            "       (SELECT count(*) FROM frog_readings WHERE device_id LIKE 'demo-lw-%' "
            "        AND time_source IS DISTINCT FROM 'network') AS frog_other, "
            "       (SELECT count(*) FROM bin_readings WHERE device_id LIKE 'demo-lw-%' "
            "        AND time_source = 'network') AS bin_network, "
            "       (SELECT count(*) FROM bin_readings WHERE device_id LIKE 'demo-lw-%' "
            "        AND time_source IS DISTINCT FROM 'network') AS bin_other, "
            "       (SELECT count(*) FROM lorawan_uplinks WHERE device_id LIKE 'demo-lw-%' AND gap > 0) AS gaps, "
            "       (SELECT count(*) FROM lorawan_uplinks WHERE device_id = $1 AND f_cnt = $2) AS copied_rows, "
            "       (SELECT count(*) FROM dead_letters WHERE device_id LIKE 'demo-lw-%') AS dead_letters",
            *copied)
    finally:
        await connection.close()
    return {key: int(value) for key, value in dict(row).items()}
