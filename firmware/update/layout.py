"""The device's update directory: installed versions, the `current`/`previous` links and the
small state files the updater and the launcher share. Every write is atomic (write a
temporary file, then rename; a new symlink renamed over the old one), so a power cut leaves
either the old state or the new one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.releases import VERSION, Report, encode_report

log = logging.getLogger("firmware.update.layout")

INSTALLED_MARK = ".installed"  # written last: a version without it is not usable
SWITCH_EXIT = 75  # the agent's exit code for "switch to the version in pending.json" (EX_TEMPFAIL)
VERSION_ENV = "CITYOPS_AGENT_VERSION"  # the launcher tells the agent which version it started
_counter = itertools.count()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(_counter)}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class Trial:
    """A version on probation: it must become healthy before `deadline` (wall clock)."""

    version: str
    previous: str | None  # None: the launcher's own install
    started_at: float
    rollout_id: int | None = None


class Layout:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.versions = self.root / "versions"
        self.state = self.root / "state"
        self.downloads = self.state / "downloads"
        self.outbox = self.state / "outbox"
        self.current_link = self.root / "current"
        self.previous_link = self.root / "previous"

    def ensure(self) -> None:
        for folder in (self.versions, self.downloads, self.outbox):
            folder.mkdir(parents=True, exist_ok=True)

    # --- versions and links -----------------------------------------------------------

    def version_dir(self, version: str) -> Path:
        if not VERSION.match(version):
            raise ValueError(f"not a release version: {version!r}")
        return self.versions / version

    def installed(self, version: str) -> bool:
        return (self.version_dir(version) / INSTALLED_MARK).exists()

    def _link_target(self, link: Path) -> str | None:
        try:
            return Path(os.readlink(link)).name
        except OSError:
            return None

    def current(self) -> str | None:
        """The version `current` points at; None: run the launcher's own install."""
        return self._link_target(self.current_link)

    def previous(self) -> str | None:
        return self._link_target(self.previous_link)

    def _set_link(self, link: Path, version: str | None) -> None:
        if version is None:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            return
        tmp = link.with_name(f".{link.name}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(Path("versions") / version)
        os.replace(tmp, link)  # rename(2) over the old link: atomic

    def set_current(self, version: str | None) -> None:
        self._set_link(self.current_link, version)

    def set_previous(self, version: str | None) -> None:
        self._set_link(self.previous_link, version)

    def prune(self, keep: set[str | None]) -> list[str]:
        """Delete installed versions not in `keep` (and half-finished installs)."""
        removed: list[str] = []
        if not self.versions.exists():
            return removed
        for folder in self.versions.iterdir():
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        return removed

    # --- state files ------------------------------------------------------------------

    def _read_json(self, name: str) -> Any:
        try:
            return json.loads((self.state / name).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.state / name, exc)
            return None

    def _write_json(self, name: str, value: Any) -> None:
        write_atomic(self.state / name, json.dumps(value).encode())

    def _remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.state / name).unlink()

    def write_pending(self, version: str, rollout_id: int | None) -> None:
        """The updater's request to the launcher: switch to this installed version."""
        self._write_json("pending.json", {"version": version, "rollout_id": rollout_id})

    def read_pending(self) -> tuple[str, int | None] | None:
        value = self._read_json("pending.json")
        if not isinstance(value, dict) or not isinstance(value.get("version"), str):
            return None
        return value["version"], value.get("rollout_id")

    def clear_pending(self) -> None:
        self._remove("pending.json")

    def write_trial(self, trial: Trial) -> None:
        self._write_json("trial.json", trial.__dict__)

    def read_trial(self) -> Trial | None:
        value = self._read_json("trial.json")
        try:
            return Trial(**value) if isinstance(value, dict) else None
        except TypeError:
            return None

    def clear_trial(self) -> None:
        self._remove("trial.json")

    def failed(self) -> dict[str, str]:
        """Versions this device refused or rolled back, with the reason: never tried again."""
        value = self._read_json("failed.json")
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def mark_failed(self, version: str, reason: str) -> None:
        self._write_json("failed.json", {**self.failed(), version: reason})

    def last_rollout(self) -> int | None:
        """The newest rollout this device took an offer from: older ones are replays."""
        value = self._read_json("rollout.json")
        return value.get("rollout_id") if isinstance(value, dict) and isinstance(value.get("rollout_id"), int) \
            else None

    def note_rollout(self, rollout_id: int) -> None:
        if rollout_id > (self.last_rollout() or 0):
            self._write_json("rollout.json", {"rollout_id": rollout_id})

    def health_marker(self, version: str) -> Path:
        return self.state / f"healthy-{version}"

    def mark_healthy(self, version: str) -> None:
        write_atomic(self.health_marker(version), f"{os.getpid()}\n".encode())

    def clear_health(self, version: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.health_marker(version).unlink()

    # --- the report outbox --------------------------------------------------------------

    def put_report(self, report: Report) -> Path:
        """Queue a report; the running agent publishes it and deletes it on the broker's ack."""
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter)}.json"
        path = self.outbox / name
        write_atomic(path, encode_report(report))
        log.info("update report: %s %s%s", report.step, report.version,
                 f" ({report.reason})" if report.reason else "")
        return path

    def pending_reports(self) -> list[Path]:
        try:
            return sorted(p for p in self.outbox.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
        except FileNotFoundError:
            return []
