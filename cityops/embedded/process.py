"""Child processes for the embedded services that cannot outlive the parent.

Each child gets its own session (so a terminal's Ctrl-C reaches only the parent, which
then stops the children in order) and a parent-death signal (so a parent killed with
SIGKILL still takes its children with it: no orphans).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from cityops.errors import EmbeddedServiceError

_PR_SET_PDEATHSIG = 1


class EmbeddedService:
    """A service this process runs, used as `async with`: started on entry, stopped on exit."""

    async def start(self) -> str:
        """Start the service; return the URL to reach it."""
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


def _die_with_parent(sig: int) -> Callable[[], None]:
    def set_pdeathsig() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, sig)

    return set_pdeathsig


def spawn(argv: Sequence[str], *, log_path: Path, death_signal: int = signal.SIGTERM,
          user: str | None = None, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a child whose output goes to `log_path` and that dies with this process
    (`env`: its whole environment; default this process's)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        try:
            return subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent(death_signal), user=user,
                env=dict(env) if env is not None else None)
        except OSError as exc:
            raise EmbeddedServiceError(f"cannot run {argv[0]}: {exc.strerror}",
                                       hint=f"check that {argv[0]} exists and can be run"
                                            + (f" by the account {user!r}" if user else "")) from None


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def claim_port(port: int, what: str, setting: str, host: str = "127.0.0.1") -> None:
    """Fail with a clear message, naming the setting to change, if `port` is taken."""
    if not port_is_free(port, host):
        raise EmbeddedServiceError(f"port {port} for {what} is already in use",
                                   hint=f"stop what uses it (another `cityops demo`?) or set {setting}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def accepts_connections(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


async def wait_for_port(proc: subprocess.Popen[bytes], port: int, *, name: str, log_path: Path,
                        timeout_s: float = 30.0) -> None:
    """Wait until the child listens on `port`; fail with its log's tail if it exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServiceError(
                f"{name} exited with code {proc.returncode} while starting: {log_tail(log_path)}",
                hint=f"see {log_path}")
        if accepts_connections(port):
            return
        await asyncio.sleep(0.1)
    raise EmbeddedServiceError(f"{name} did not listen on port {port} within {timeout_s:.0f} s",
                               hint=f"see {log_path}")


async def stop_process(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM,
                       timeout_s: float = 30.0) -> None:
    """Ask the child to stop, wait, and kill it if it will not."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        await asyncio.to_thread(proc.wait, timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait)


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def make_traversable(folder: Path) -> None:
    """Let other accounts pass through `folder` and its parents: search permission only,
    so they still cannot list or change them."""
    for parent in [folder, *folder.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)
