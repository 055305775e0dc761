"""The rollout state machine (pure): given what the devices of the current stage reported,
advance to the next stage, finish, wait, or pause with the reason.

    active --(stage healthy enough)--> active, next stage --(last stage)--> completed
    active --(failure rate over the threshold)--> paused --(operator: resume)--> active
    active|paused --(operator: cancel)--> cancelled

A stage passes when at least `min_healthy` of its devices (all of them, when it has fewer)
reported healthy and the failure rate (failed or rolled back, over the devices targeted)
stays at or under `max_failure_rate`, in the stage and over the whole rollout so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from devices.releases.errors import RolloutError

State = Literal["active", "paused", "completed", "cancelled"]
Action = Literal["advance", "complete", "hold", "pause"]
DEFAULT_STAGES = (5.0, 25.0, 100.0)


@dataclass(frozen=True)
class Policy:
    stages: tuple[float, ...] = DEFAULT_STAGES
    max_failure_rate: float = 0.1
    min_healthy: int = 3

    def __post_init__(self) -> None:
        if not self.stages or any(not 0 < s <= 100 for s in self.stages):
            raise RolloutError("stages are percentages above 0 and at most 100")
        if list(self.stages) != sorted(set(self.stages)) or self.stages[-1] != 100:
            raise RolloutError("stages must increase and end at 100 (e.g. 5,25,100)")
        if not 0 <= self.max_failure_rate < 1:
            raise RolloutError("the failure threshold is a fraction from 0 up to (not including) 1")
        if self.min_healthy < 1:
            raise RolloutError("at least one device must report healthy before a stage passes")


@dataclass(frozen=True)
class Tally:
    targeted: int
    healthy: int = 0
    failed: int = 0

    @property
    def failure_rate(self) -> float:
        return self.failed / self.targeted if self.targeted else 0.0

    @property
    def waiting(self) -> int:
        return self.targeted - self.healthy - self.failed


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(policy: Policy, stage_index: int, stage: Tally, overall: Tally) -> Decision:
    label = f"stage {stage_index + 1}/{len(policy.stages)} ({policy.stages[stage_index]:g} %)"
    for name, tally in (("stage", stage), ("rollout", overall)):
        if tally.failed and tally.failure_rate > policy.max_failure_rate:
            return Decision("pause", f"{label}: {tally.failed} of {tally.targeted} devices failed "
                                     f"({tally.failure_rate:.0%} in the {name}, over the "
                                     f"{policy.max_failure_rate:.0%} threshold)")
    needed = min(policy.min_healthy, stage.targeted)
    if stage.healthy < needed:
        return Decision("hold", f"{label}: {stage.healthy} of {needed} healthy reports needed "
                                f"({stage.failed} failed, {stage.waiting} waiting)")
    if stage_index + 1 >= len(policy.stages):
        return Decision("complete", f"{label}: {stage.healthy} healthy, {stage.failed} failed: rollout complete")
    return Decision("advance", f"{label} passed: {stage.healthy} healthy, {stage.failed} failed of "
                               f"{stage.targeted}; on to {policy.stages[stage_index + 1]:g} %")


def parse_stages(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise RolloutError(f"stages {text!r}: give percentages separated by commas, e.g. 5,25,100") from None


def stage_of(stages: Sequence[float], index: int) -> float:
    return stages[min(index, len(stages) - 1)]
