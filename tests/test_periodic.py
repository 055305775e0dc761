"""One periodic loop, one failure policy (cityops/periodic.py, issue 19): one task's failure
does not skip another's, a failing task backs off and recovers, a stop drains the task in hand."""

from __future__ import annotations

import asyncio

import pytest

from cityops.errors import StorageError
from cityops.periodic import Periodic, Task


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_failing_task_does_not_skip_the_others_and_backs_off_until_it_recovers() -> None:
    ran: list[str] = []
    broken = {"damp": True}

    async def damp() -> None:
        ran.append("damp")
        if broken["damp"]:
            raise StorageError("the database went away", sqlstate="08006")

    async def gritting() -> None:
        ran.append("gritting")

    clock = FakeClock()
    loop = Periodic([Task("damp", damp), Task("gritting", gritting)], every_s=60, max_backoff_s=240, clock=clock)
    await loop.cycle()                        # damp fails; gritting still runs
    assert ran == ["damp", "gritting"] and loop.health()["damp"].failures == 1
    assert "StorageError: the database went away" in (loop.health()["damp"].last_error or "")
    assert loop.health()["gritting"].last_success is not None

    ran.clear()
    clock.now = 30                            # backing off one cycle (60 s): damp is not tried
    await loop.cycle()
    assert ran == ["gritting"]
    clock.now = 60
    await loop.cycle()                        # tried again, fails again: now 120 s
    assert ran == ["gritting", "damp", "gritting"] and loop.health()["damp"].failures == 2
    assert loop.health()["damp"].skipped_until == pytest.approx(180)
    for failures in (3, 4, 5):                # the backoff is capped at max_backoff_s
        clock.now = loop.health()["damp"].skipped_until
        await loop.cycle()
        assert loop.health()["damp"].failures == failures
    assert loop.health()["damp"].skipped_until - clock.now == 240

    broken["damp"] = False                    # it recovers: the record is clean again
    clock.now = loop.health()["damp"].skipped_until
    await loop.cycle()
    health = loop.health()["damp"]
    assert (health.failures, health.last_error, health.skipped_until) == (0, None, 0.0)


async def test_stop_lets_the_task_in_hand_finish_then_ends_the_loop() -> None:
    started, finished = asyncio.Event(), asyncio.Event()
    stop = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(0.2)              # work in hand when SIGTERM arrives
        finished.set()

    loop = asyncio.create_task(Periodic([Task("slow", slow)], every_s=3600).run(stop))
    await asyncio.wait_for(started.wait(), 5)
    stop.set()
    await asyncio.wait_for(loop, 5)           # ends at once after the cycle, not after every_s
    assert finished.is_set()


def test_a_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Periodic([], every_s=0)
