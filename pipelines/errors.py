"""The pipelines' exceptions.

    CityOpsError                  (cityops.errors)
     +-- PipelineError            every error a pipeline, its store or its command raises on purpose
          +-- InvalidRunRequest   a run or a period asked for in a way that cannot work: no rule
          |                       chosen, --every or --days not positive
          +-- NoFrogBox           the household has no active frog box (evidence report, diary advice)
          +-- NoCompleteHour      the period has no complete hour of readings yet
          +-- NothingPublished    no weekly damp statistics are published yet
          +-- RouteDecisionNotFound  no such gritting run, or that run decided nothing for the route

The rules' own errors pass through unchanged (rules.errors: a network or forecast file that
cannot be imported, a rate matrix, an officer's entry or a period the decision log refuses);
database trouble arrives as cityops.errors.StorageError. Each carries `hint`.
"""

from __future__ import annotations

from cityops.errors import CityOpsError


class PipelineError(CityOpsError):
    """Base of the pipelines' deliberate errors."""


class InvalidRunRequest(PipelineError):
    pass


class NoFrogBox(PipelineError):
    hint = "check the household id (devices.household_id)"

    def __init__(self, household_id: str, *, hint: str | None = None) -> None:
        super().__init__(f"no active frog box is registered to household {household_id!r}", hint=hint)
        self.household_id = household_id


class NoCompleteHour(PipelineError):
    hint = "try again in an hour"


class NothingPublished(PipelineError):
    hint = "cityops rules run --damp publishes each week"


class RouteDecisionNotFound(PipelineError):
    """`field` names what is not there: the run, or the route in that run."""

    hint = "`cityops roads log --from DATE --to DATE` lists the runs and their routes"

    def __init__(self, message: str, *, field: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field
