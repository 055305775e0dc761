"""`cityops demo` as a child process: its environment and its printed lines."""

from __future__ import annotations

import os
import subprocess
import time

from cityops.embedded.process import free_port


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout_s: float = 60) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip())
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not printed; output so far: {seen}")


def demo_env(data_dir, port: int) -> dict[str, str]:
    env = {**os.environ, "CITYOPS_EMBEDDED__DATA_DIR": str(data_dir),
           "CITYOPS_EMBEDDED__POSTGRES_PORT": str(free_port()),
           "CITYOPS_EMBEDDED__MQTT_PORT": str(free_port()), "CITYOPS_API__PORT": str(port)}
    env.pop("CITYOPS_DATABASE_URL", None)
    env.pop("CITYOPS_MQTT_URL", None)
    return env
