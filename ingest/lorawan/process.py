"""Start `cityops lorawan run` as a child process with its settings in the environment.

The LoRaWAN benchmark runs the integration this way, as ingest/process.py runs `cityops ingest`:
a real process, killable on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from cityops.settings import NetworkServer


def start_integration(database_url: str, servers: Sequence[NetworkServer], *, metrics_port: int = 0,
                      log_path: Path | None = None, **settings: str) -> subprocess.Popen[bytes]:
    """One integration process for `servers`; `settings` are extra CITYOPS_INGEST__* values, e.g.
    device_messages_per_s="1000000". `log_path`: its warnings and errors are appended there (default:
    discarded)."""
    listed = [json.loads(server.model_dump_json(exclude_none=True)) for server in servers]
    for entry, server in zip(listed, servers, strict=True):
        if server.password is not None:  # model_dump_json masks a SecretStr
            entry["password"] = server.password.get_secret_value()
    env = {**os.environ, "CITYOPS_DATABASE_URL": database_url, "CITYOPS_LORAWAN__SERVERS": json.dumps(listed),
           "CITYOPS_LORAWAN__METRICS_PORT": str(metrics_port), "CITYOPS_LOG_LEVEL": "WARNING"}
    env.update({f"CITYOPS_INGEST__{name.upper()}": value for name, value in settings.items()})
    argv = [sys.executable, "-m", "cityops_cli", "lorawan", "run"]
    if log_path is None:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
