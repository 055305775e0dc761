"""Periodic work with one failure policy: the rules, the alerts, the releases and the demo
all run their cycles through `Periodic`.

Each cycle runs the tasks in order. A task that raises is logged and recorded in its
`TaskHealth`; the others still run (a failed damp run does not skip gritting). A failed task
is retried at the next cycles with an exponential backoff (one cycle, two, four, ... up to
`max_backoff_s`), so a broken database is not hammered; a success resets it. Exceptions
named `fatal` end the loop instead (a lost connection that only a restart mends). The loop ends
when `stop` is set (SIGTERM or SIGINT with `stop_event_on_signals`), after the task that is running
finishes: work in hand is drained, never cut off. `health()` is what a status page or a
health check shows: per task, the last success, the last error and how many failed in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger("cityops.periodic")


@dataclass
class TaskHealth:
    last_success: datetime | None = None
    last_error: str | None = None
    failures: int = 0                   # in a row; 0 after a success
    total_failures: int = 0             # since the start
    skipped_until: float = 0.0          # monotonic: backing off until then

    def as_json(self) -> dict[str, object]:
        return {"last_success": self.last_success.isoformat() if self.last_success else None,
                "last_error": self.last_error, "failures": self.failures, "total_failures": self.total_failures}


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[[], Awaitable[object]]


@dataclass
class Periodic:
    """Run `tasks` every `every_s` seconds until `stop` is set."""

    tasks: Sequence[Task]
    every_s: float
    max_backoff_s: float = 300.0
    # failures no retry here can mend (a connection the service holds is gone): they end the
    # loop, and the service's supervisor (systemd, compose) starts it afresh
    fatal: tuple[type[BaseException], ...] = ()
    clock: Callable[[], float] = time.monotonic
    _health: dict[str, TaskHealth] = field(init=False, default_factory=dict)
    cycles: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.every_s <= 0:
            raise ValueError("every_s must be positive")
        self._health = {task.name: TaskHealth() for task in self.tasks}

    def health(self) -> dict[str, TaskHealth]:
        return dict(self._health)

    async def cycle(self) -> None:
        """Each task once (those backing off excepted), each failure contained."""
        for task in self.tasks:
            state = self._health[task.name]
            if self.clock() < state.skipped_until:
                continue
            try:
                await task.run()
            except asyncio.CancelledError:
                raise
            except self.fatal:
                raise
            except Exception as exc:  # one task's failure must not stop the others
                state.failures += 1
                state.total_failures += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                backoff = min(self.max_backoff_s, self.every_s * 2 ** (state.failures - 1))
                state.skipped_until = self.clock() + backoff
                log.error("%s failed (%d in a row), next attempt in %.0f s: %s", task.name, state.failures,
                          backoff, state.last_error)
            else:
                state.failures, state.last_error, state.skipped_until = 0, None, 0.0
                state.last_success = datetime.now(UTC)
        self.cycles += 1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.cycle()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)


def stop_event_on_signals() -> asyncio.Event:
    """An event SIGINT or SIGTERM sets (installed on the running loop): a loop drains, then ends."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
