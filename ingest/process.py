"""Start `cityops ingest` as a child process with its settings in the environment.

The ingest benchmark and the fault tests run real consumers this way: several at once on a
shared subscription, each killable on its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def start_consumer(database_url: str, broker_url: str, *, client_id: str, group: str, metrics_port: int = 0,
                   log_path: Path | None = None, **settings: str) -> subprocess.Popen[bytes]:
    """One consumer; `settings` are extra CITYOPS_INGEST__* values, e.g. flush_interval_s="0.05".
    `log_path`: its warnings and errors are appended there (default: discarded)."""
    env = {**os.environ, "CITYOPS_DATABASE_URL": database_url, "CITYOPS_MQTT_URL": broker_url,
           "CITYOPS_INGEST__CLIENT_ID": client_id, "CITYOPS_INGEST__SHARE_GROUP": group,
           "CITYOPS_INGEST__METRICS_PORT": str(metrics_port), "CITYOPS_LOG_LEVEL": "WARNING"}
    env.update({f"CITYOPS_INGEST__{name.upper()}": value for name, value in settings.items()})
    argv = [sys.executable, "-m", "cityops_cli", "ingest"]
    if log_path is None:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
