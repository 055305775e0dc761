"""The jobs' exceptions.

    CityOpsError                 (cityops.errors)
     +-- JobError                every error the jobs lifecycle raises on purpose
          +-- JobNotFound        no such job
          +-- JobConflict        the route or the truck already has a job that is not completed;
          |                      a completed job cannot be started again
          +-- InvalidJob         a job that cannot be made or completed as asked: the crew member,
                                 the route, the plan or its truck, the bins skipped (`field`)

The API answers them 404, 409 and 422 (ops_api/errors.py, the one handler); a decision or
plan that is not there comes from the pipelines (pipelines.errors.RouteDecisionNotFound).
"""

from __future__ import annotations

from cityops.errors import CityOpsError


class JobError(CityOpsError):
    """Base of the jobs' deliberate errors."""


class JobNotFound(JobError):
    def __init__(self, job_id: int, *, hint: str | None = None) -> None:
        super().__init__(f"no job {job_id}", hint=hint)
        self.job_id = job_id


class JobConflict(JobError):
    pass


class InvalidJob(JobError):
    """`field` names the culprit (assigned_to, route_id, plan_id, truck, skipped)."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message, hint=hint)
        self.field = field
