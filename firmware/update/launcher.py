"""`python -m firmware.update.launcher --config FILE`: the supervisor systemd runs on a device.

It runs the agent of `current` (or, when there is none, its own install: the "factory"
version, which never changes and is always there to fall back to) and decides, alone, which
version runs:

- the agent exits 75 after installing a release: switch (`previous` = the old `current`,
  `current` = the new one, atomically) and put the new version on trial;
- on trial, the agent must write its health marker (its first reading acknowledged by the
  broker) within `health_timeout_s`; then the trial ends: `healthy` is reported and versions
  other than current and previous are deleted;
- a crash loop (`crash_loop_restarts` exits within `crash_loop_window_s`), on trial or not,
  or a missed health deadline: roll back to `previous` (or the factory install), remember the
  version as failed (it is not installed again), report `rolled_back` with the reason;
- SIGTERM: stop the agent (it publishes `offline` and closes its spool) and exit 0.

Synchronous and stdlib-only besides this package's small modules: nothing here can be broken
by a release, because a release never replaces the launcher.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import msgspec

from contract.releases import ENTRY_POINT, Report, Step, now_utc
from firmware import __version__
from firmware.update.config import UpdateConfig
from firmware.update.layout import SWITCH_EXIT, VERSION_ENV, Layout, Trial

log = logging.getLogger("firmware.update.launcher")



@dataclass(frozen=True)
class Limits:
    health_timeout_s: float = 600.0
    crash_loop_restarts: int = 3
    crash_loop_window_s: float = 300.0
    restart_delay_s: float = 5.0
    stop_timeout_s: float = 20.0
    poll_s: float = 0.2

    @classmethod
    def from_config(cls, config: UpdateConfig) -> Limits:
        return cls(config.health_timeout_s, config.crash_loop_restarts, config.crash_loop_window_s,
                   config.restart_delay_s)


def read_update_config(path: Path) -> UpdateConfig:
    """Only the [update] table of the agent config: the launcher needs nothing else."""
    try:
        raw = tomllib.loads(path.read_text()).get("update", {})
        return msgspec.convert(raw, UpdateConfig)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SystemExit(f"error: cannot read [update] from {path}: {exc}") from None


class Launcher:
    def __init__(self, config_path: Path, layout: Layout, limits: Limits, *, python: str = sys.executable,
                 factory_version: str = __version__):
        self.config_path = config_path.resolve()
        self.layout = layout
        self.limits = limits
        self.python = python
        self.factory_version = factory_version
        self._stopping = False
        self._proc: subprocess.Popen[bytes] | None = None

    # --- processes ------------------------------------------------------------------------

    def _spawn(self, version: str | None) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env[VERSION_ENV] = version or self.factory_version
        if version is None:
            cwd = self.layout.state if self.layout.state.is_dir() else Path("/")
        else:
            folder = self.layout.version_dir(version)
            cwd = folder / "src"
            paths = [str(cwd)] + ([str(folder / "site")] if (folder / "site").is_dir() else [])
            env["PYTHONPATH"] = os.pathsep.join(paths)  # ahead of the launcher's own site-packages
        log.info("starting the agent, version %s%s", env[VERSION_ENV], "" if version else " (factory)")
        return subprocess.Popen([self.python, "-m", ENTRY_POINT, "--config", str(self.config_path)],
                                env=env, cwd=cwd)

    def _stop_child(self, proc: subprocess.Popen[bytes]) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.limits.stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        try:
            self.layout.ensure()
        except OSError as exc:  # never a reason not to run the agent: run it without updates
            log.error("cannot use %s for updates (%s): running the installed agent without them",
                      self.layout.root, exc)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        if self.layout.read_pending() is not None:  # the agent asked to switch, then we were stopped
            self._switch()
        exits: collections.deque[float] = collections.deque()
        while not self._stopping:
            version = self._current()
            trial = self.layout.read_trial()
            if trial is not None and trial.version != version:
                self.layout.clear_trial()  # a switch that never completed
                trial = None
            self._proc = self._spawn(version)
            outcome = self._watch(self._proc, trial)
            code = self._proc.returncode
            self._proc = None
            if self._stopping:
                break
            if code == SWITCH_EXIT and self._switch():
                exits.clear()
                continue
            trial = self.layout.read_trial()  # may have ended (healthy) while it ran
            now = time.monotonic()
            exits.append(now)
            while exits and now - exits[0] > self.limits.crash_loop_window_s:
                exits.popleft()
            loop = len(exits) >= self.limits.crash_loop_restarts
            if outcome == "deadline" and trial is not None:
                self._roll_back(version, trial.previous, trial.rollout_id,
                                f"no reading published within {self.limits.health_timeout_s:g} s of the switch")
            elif loop and version is not None:
                self._roll_back(version, trial.previous if trial else self.layout.previous(),
                                trial.rollout_id if trial else None,
                                f"crash loop: {len(exits)} exits within {self.limits.crash_loop_window_s:g} s "
                                f"(last exit code {code})")
            else:
                log.warning("the agent (version %s) exited with code %s; restarting in %g s",
                            version or self.factory_version, code, self.limits.restart_delay_s)
                self._sleep(self.limits.restart_delay_s)
                continue
            exits.clear()
        log.info("launcher stopped")
        return 0

    def _current(self) -> str | None:
        version = self.layout.current()
        if version is not None and not self.layout.installed(version):
            log.error("current points at %s, which is not installed: falling back", version)
            previous = self.layout.previous()
            self.layout.set_current(previous if previous and self.layout.installed(previous) else None)
            self.layout.set_previous(None)
            return self.layout.current()
        return version

    def _watch(self, proc: subprocess.Popen[bytes], trial: Trial | None) -> str:
        """Wait for the child to exit; meanwhile end the trial when the health marker shows up,
        or stop the child when the deadline passes ("deadline")."""
        while proc.poll() is None:
            if trial is not None:
                if self.layout.health_marker(trial.version).exists():
                    self._commit(trial)
                    trial = None
                elif time.time() > trial.started_at + self.limits.health_timeout_s:
                    log.error("version %s did not publish within %g s: stopping it", trial.version,
                              self.limits.health_timeout_s)
                    self._stop_child(proc)
                    return "deadline"
            time.sleep(self.limits.poll_s)
        return "exit"

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < end:
            time.sleep(min(self.limits.poll_s, max(0.0, end - time.monotonic())))

    # --- switching, committing, rolling back ---------------------------------------------

    def _report(self, step: Step, version: str, from_version: str | None, rollout_id: int | None,
                reason: str | None = None) -> None:
        self.layout.put_report(Report(step=step, version=version, at=now_utc(), from_version=from_version,
                                      reason=reason, rollout_id=rollout_id))

    def _switch(self) -> bool:
        pending = self.layout.read_pending()
        self.layout.clear_pending()
        if pending is None or not self.layout.installed(pending[0]):
            log.error("asked to switch to %s, which is not installed: staying", pending and pending[0])
            return False
        version, rollout_id = pending
        old = self.layout.current()
        if old == version:
            return True
        # The trial first: a power cut between these steps leaves a trial the links do not
        # match (cleared at start), or links with their trial; never a new version unwatched.
        self.layout.clear_health(version)
        self.layout.write_trial(Trial(version, old, time.time(), rollout_id))
        self.layout.set_previous(old)
        self.layout.set_current(version)
        log.info("switched %s -> %s: on trial for %g s", old or "factory", version, self.limits.health_timeout_s)
        return True

    def _commit(self, trial: Trial) -> None:
        self.layout.clear_trial()
        self._report("healthy", trial.version, trial.previous or self.factory_version, trial.rollout_id)
        removed = self.layout.prune({trial.version, trial.previous})
        log.info("version %s is healthy%s", trial.version, f"; removed {', '.join(removed)}" if removed else "")

    def _roll_back(self, failed: str | None, to: str | None, rollout_id: int | None, reason: str) -> None:
        if failed is None:
            return
        if to is not None and not self.layout.installed(to):
            to = None
        log.error("rolling back %s -> %s: %s", failed, to or "factory", reason)
        self.layout.set_current(to)
        self.layout.set_previous(None)
        self.layout.clear_trial()
        self.layout.clear_health(failed)
        self.layout.mark_failed(failed, reason)
        self._report("rolled_back", failed, to or self.factory_version, rollout_id, reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.update.launcher",
                                     description="Run the device agent's current version; switch to installed "
                                                 "updates and roll back the ones that fail.")
    parser.add_argument("--config", type=Path, required=True, help="the agent config (TOML) with its [update] table")
    parser.add_argument("--root", type=Path, default=None, help="override [update].root")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("CITYOPS_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)-7s launcher %(name)s: %(message)s")
    config = read_update_config(args.config)
    layout = Layout(args.root or config.root)
    return Launcher(args.config, layout, Limits.from_config(config)).run()


if __name__ == "__main__":
    sys.exit(main())
