"""The agent's commands as processes: power loss (SIGKILL) mid-send, and clear errors.

A Pi runs the agent as `python -m firmware --config FILE`, which imports no server code;
the simulated fleet is the platform's `cityops agent simulate`."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cityops.embedded.process import spawn, stop_process
from firmware.config import build_spec, load_agent_config
from firmware.errors import AgentConfigError
from tests.agent_helpers import START, collecting
from tests.conftest import BrokerInstance

EXAMPLE = Path(__file__).parents[1] / "deploy" / "agent" / "agent.example.toml"


def agent_argv(*args: str) -> list[str]:
    """The agent as a Pi runs it."""
    return [sys.executable, "-m", "firmware", *args]


def simulate_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "cityops_cli", "agent", "simulate", *args]


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CITYOPS_LOG_LEVEL": "WARNING"})


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    return run(agent_argv(*args))


# what a Pi must not load to run its agent (issue 19: the agent carries no platform)
SERVER_PACKAGES = {"fastapi", "starlette", "uvicorn", "asyncpg", "pydantic", "pydantic_settings", "pyvrp", "numpy",
                   "shapely", "aiomqtt", "amqtt", "ops_api", "ingest", "rules", "devices", "alerts", "dashboards",
                   "democity", "benchmarks", "cityops_cli"}


def spooled_timestamps(spool: Path) -> list[datetime]:
    with contextlib.closing(sqlite3.connect(spool)) as db:
        rows = db.execute("SELECT body FROM readings ORDER BY id").fetchall()
    return [datetime.fromisoformat(json.loads(body)["ts"]) for (body,) in rows]


async def test_an_agent_killed_mid_send_replays_its_spool_and_loses_nothing(
        mosquitto: BrokerInstance, unique: str, tmp_path: Path) -> None:
    prefix, spool_dir = f"{unique}-", tmp_path / "spools"
    common = ["--homes", "1", "--start", START.isoformat(), "--prefix", prefix, "--spool-dir", str(spool_dir),
              "--mqtt-url", mosquitto.url, "--seed", "3"]
    device = f"{prefix}home-000"
    async with collecting(mosquitto.port, prefix) as collector:
        # 10 samples a second, at most 5 readings a second out: the spool always has a backlog.
        proc = spawn(simulate_argv(*common, "--speed", "3000", "--duration", "360000",
                                "--batch-max", "5", "--rate", "1"), log_path=tmp_path / "run1.log")
        try:
            await collector.wait_for(lambda: len(collector.batches) >= 3)
        finally:
            proc.send_signal(signal.SIGKILL)  # a power cut, mid-send
            await stop_process(proc)
        assert proc.returncode == -signal.SIGKILL
        before_restart = {r.ts for r in collector.readings(device)}
        left = spooled_timestamps(spool_dir / f"{device}.sqlite3")
        assert len(left) >= 5, "the spool should hold a backlog at the kill"

        # Restart with the same spool; --duration 0 samples nothing: it only replays the spool.
        result = await asyncio.to_thread(run, simulate_argv(*common, "--speed", "3000", "--duration", "0",
                                         "--rate", "50"))
        assert result.returncode == 0, result.stderr
        await collector.wait_for(lambda: set(left) <= {r.ts for r in collector.readings(device)})
    arrived = sorted({r.ts for r in collector.readings(device)})
    assert set(left) - before_restart, "some readings must have come only from the replay"
    assert arrived == [START + timedelta(minutes=5 * k) for k in range(len(arrived))]  # no gaps
    assert arrived[-1] == max(left)
    assert spooled_timestamps(spool_dir / f"{device}.sqlite3") == []  # all acknowledged, all deleted


def test_the_example_config_is_valid_and_its_sensors_fail_cleanly_without_hardware(tmp_path: Path) -> None:
    config = load_agent_config(EXAMPLE)
    assert (config.device_id, config.kind, config.sensors["climate"].address) == ("frog-0042", "frog", 0x44)
    with pytest.raises(AgentConfigError, match="password file"):
        build_spec(config)  # /etc/cityops-agent/mqtt-password does not exist here
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    local = tmp_path / "agent.toml"
    local.write_text(EXAMPLE.read_text().replace("/etc/cityops-agent/mqtt-password", str(password))
                     .replace("/var/lib/cityops-agent", str(tmp_path)))
    spec = build_spec(load_agent_config(local))
    assert spec.mqtt.password == "s3cret" and spec.mqtt.tls and spec.mqtt.port == 8883
    result = agent("--config", str(local), "--check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "FAIL  frog-0042/climate/sht31: SensorAbsent" in result.stdout

    # the same check, counting what it imported: nothing of the server
    probe = run([sys.executable, "-c", "import sys; from firmware.cli import main; code = main(sys.argv[1:]); "
                 "print(sorted({m.split('.')[0] for m in sys.modules}))", "--config", str(local), "--check"])
    assert "FAIL  frog-0042/climate/sht31" in probe.stdout, probe.stderr
    loaded = set(ast.literal_eval(probe.stdout.strip().splitlines()[-1]))
    assert loaded & SERVER_PACKAGES == set()


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read the agent config"),
    ("device_id = ", "not valid TOML"),
    ('device_id = "Frog 1"\nkind = "frog"\n[mqtt]\nurl = "mqtt://h"\n[sensors.climate]\ndriver = "sht31"\n',
     "device_id 'Frog 1' must be"),
    ('device_id = "bin-1"\nkind = "bin"\n[mqtt]\nurl = "mqtt://h"\n[sensors.climate]\ndriver = "sht31"\n',
     "missing [sensors.distance]"),
    ('device_id = "f-1"\nkind = "frog"\n[mqtt]\nurl = "mqtt://h"\n[sensors.climate]\ndriver = "sht99"\n',
     "Invalid enum value 'sht99'"),
    # several brokers and MQTT 3.1.1 (issue 26): one of url and urls, valid URLs, 3.1.1 only with receipts
    ('device_id = "f-1"\nkind = "frog"\n[mqtt]\nurl = "mqtt://h"\nurls = ["mqtt://a", "mqtt://b"]\n'
     '[sensors.climate]\ndriver = "sht31"\n', "[mqtt] has both url and urls"),
    ('device_id = "f-1"\nkind = "frog"\n[mqtt]\nurls = ["mqtts://a", "mqtts//b"]\n'
     '[sensors.climate]\ndriver = "sht31"\n', "not an MQTT URL: 'mqtts//b' - at `$.mqtt.urls[1]`"),
    ('device_id = "f-1"\nkind = "frog"\n[mqtt]\nurls = ["mqtt://a", "mqtt://b"]\nprotocol = "3.1.1"\n'
     '[send]\nreceipts = false\n[sensors.climate]\ndriver = "sht31"\n',
     '[mqtt] protocol = "3.1.1" with [send] receipts = false'),
])
def test_a_bad_config_is_one_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "agent.toml"
    if content is not None:
        path.write_text(content)
    result = agent("--config", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr and "hint:" in result.stderr


def test_simulate_without_devices_says_what_to_give() -> None:
    result = run(simulate_argv())
    assert result.returncode == 2 and "--homes" in result.stdout
    result = agent()
    assert result.returncode == 1 and "needs --config FILE" in result.stderr


async def test_a_real_device_without_its_sensor_stays_up_says_why_and_stops_cleanly_on_sigterm(
        mosquitto: BrokerInstance, unique: str, tmp_path: Path) -> None:
    device = f"{unique}-frog"
    config = tmp_path / "agent.toml"
    config.write_text(f'device_id = "{device}"\nkind = "frog"\ninterval_s = 10\n'
                      f'[mqtt]\nurl = "{mosquitto.url}"\n[spool]\npath = "{tmp_path / "spool.sqlite3"}"\n'
                      '[sensors.climate]\ndriver = "sht31"\nbus = 97\n')
    log_path = tmp_path / "agent.log"
    async with collecting(mosquitto.port, unique) as collector:
        proc = spawn(agent_argv("--config", str(config)), log_path=log_path)
        try:
            await collector.wait_for(lambda: (device, b"online", False) in collector.statuses)
        finally:
            await stop_process(proc, sig=signal.SIGTERM)
        await collector.wait_for(lambda: (device, b"offline", False) in collector.statuses)
    log = log_path.read_text()
    assert proc.returncode == 0, log
    assert log.count("SensorAbsent") == 1  # logged once, whether smbus2 is installed or not
    assert "smbus2 is not installed" in log or "cannot open /dev/i2c-97" in log
    assert collector.readings(device) == [] and spooled_timestamps(tmp_path / "spool.sqlite3") == []


@pytest.mark.timeout(300)
def test_the_agent_distribution_installs_alone_and_checks_its_sensors(tmp_path: Path) -> None:
    """Issue 19: `pip install ./agent` in a fresh venv, as README says, brings the agent and the
    contract with paho-mqtt, msgspec and cryptography, nothing of the platform; `cityops-agent
    --check` then reads (here: fails cleanly to read) every configured sensor."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                          "--disable-pip-version-check", str(Path(__file__).parents[1] / "agent")],
                         capture_output=True, text=True, timeout=240)
    assert pip.returncode == 0, pip.stderr
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    assert {"cityops-agent", "paho-mqtt", "msgspec", "cryptography"} <= installed
    assert installed & {"fastapi", "asyncpg", "pydantic", "pyvrp", "numpy", "cityops"} == set()
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    config = tmp_path / "agent.toml"
    config.write_text(EXAMPLE.read_text().replace("/etc/cityops-agent/mqtt-password", str(password))
                      .replace("/var/lib/cityops-agent", str(tmp_path)))
    check = subprocess.run([str(venv / "bin" / "cityops-agent"), "--config", str(config), "--check"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert check.returncode == 1 and "Traceback" not in check.stderr, check.stderr
    assert "FAIL  frog-0042/climate/sht31: SensorAbsent" in check.stdout
