"""The embedded MQTT broker: a `mosquitto` child process when the binary is on PATH,
otherwise amqtt (pure Python) inside this process.

The Mosquitto config sets what ingest relies on (docs/science.md#mosquitto-sessions-and-queues):
sessions kept on disk across restarts (`persistence true`) and a queue per persistent
session large enough that a backlog is not dropped (`max_queued_messages`).
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any, Literal

from cityops.embedded.process import (
    EmbeddedService,
    claim_port,
    make_traversable,
    spawn,
    stop_process,
    wait_for_port,
)
from cityops.errors import EmbeddedServiceError

log = logging.getLogger("cityops.embedded.broker")

MAX_QUEUED_MESSAGES = 1_000_000
MAX_PACKET_SIZE = 262_144  # the production limit (devices/broker_config.py): bigger packets disconnect
MAX_INFLIGHT_BYTES = 67_108_864  # unacknowledged bytes to one client: bounds ingest's buffers in a flood


def mosquitto_config(port: int, persistence_dir: Path | None, *, extra: str = "") -> str:
    """A Mosquitto 2 config for one loopback listener; extra lines (auth, ACL) appended."""
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous false" if "password_file" in extra or "plugin " in extra else "allow_anonymous true",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_packet_size {MAX_PACKET_SIZE}",
        f"max_inflight_bytes {MAX_INFLIGHT_BYTES}",
        "max_inflight_messages 100",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_dest stdout",
    ]
    if persistence_dir is not None:
        lines += ["persistence true", f"persistence_location {persistence_dir}/", "autosave_interval 30"]
    else:
        lines.append("persistence false")
    return "\n".join(lines) + "\n" + extra


class EmbeddedBroker(EmbeddedService):
    """Start and stop the embedded broker on 127.0.0.1:port."""

    def __init__(self, data_dir: Path, port: int,
                 kind: Literal["auto", "mosquitto", "amqtt"] = "auto", *, persistent: bool = True,
                 extra_config: str = ""):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.kind = _choose(kind)
        self.persistent = persistent
        self.extra_config = extra_config  # Mosquitto lines appended (password_file, acl_file, logging)
        if extra_config and self.kind != "mosquitto":
            raise EmbeddedServiceError("extra broker configuration needs Mosquitto, not amqtt",
                                       hint="install mosquitto (apt-get install mosquitto)")
        self.log_path = self.data_dir / "logs" / "broker.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._amqtt: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The Mosquitto process while it runs (to send it SIGHUP after its files change)."""
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> str:
        claim_port(self.port, "the embedded MQTT broker", "CITYOPS_EMBEDDED__MQTT_PORT")
        if self.kind == "mosquitto":
            await self._start_mosquitto()
        else:
            await self._start_amqtt()
        log.info("embedded %s broker ready on port %d", self.kind, self.port)
        return self.url

    async def stop(self) -> None:
        if self._proc is not None:
            await stop_process(self._proc, sig=signal.SIGTERM)
            self._proc = None
        if self._amqtt is not None:
            await self._amqtt.shutdown()
            self._amqtt = None

    async def kill(self) -> None:
        """SIGKILL, as an OOM kill or a power cut would: Mosquitto writes nothing first, so what it
        held in memory since its last autosave is gone (the crash tests and the soak use this)."""
        if self._proc is not None:
            await stop_process(self._proc, sig=signal.SIGKILL)
            self._proc = None

    async def _start_mosquitto(self) -> None:
        broker_dir = self.data_dir / "mosquitto"
        broker_dir.mkdir(parents=True, exist_ok=True)
        user = mosquitto_user()
        if user:
            make_traversable(broker_dir)
            shutil.chown(broker_dir, user)
        config = broker_dir / "mosquitto.conf"
        config.write_text(mosquitto_config(self.port, broker_dir if self.persistent else None,
                                           extra=self.extra_config))
        binary = shutil.which("mosquitto")
        assert binary is not None
        self._proc = spawn([binary, "-c", str(config)], log_path=self.log_path, user=user)
        await wait_for_port(self._proc, self.port, name="mosquitto", log_path=self.log_path)

    async def _start_amqtt(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._amqtt = Broker(config)
        await self._amqtt.start()


def _choose(kind: Literal["auto", "mosquitto", "amqtt"]) -> Literal["mosquitto", "amqtt"]:
    has_mosquitto = shutil.which("mosquitto") is not None
    if kind == "mosquitto" and not has_mosquitto:
        raise EmbeddedServiceError("CITYOPS_EMBEDDED__BROKER=mosquitto but no `mosquitto` binary is on PATH",
                                   hint="install it (apt-get install mosquitto) or set the broker to auto")
    if kind == "auto":
        return "mosquitto" if has_mosquitto else "amqtt"
    return kind



def mosquitto_user() -> str | None:
    """Under root, the `mosquitto` account to run as. Started as root, Mosquitto would drop
    to it by itself, and that change of user would cancel our parent-death signal."""
    import os
    import pwd

    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("mosquitto").pw_name
    except KeyError:
        return None
