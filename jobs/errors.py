"""The jobs' exceptions.

    CityOpsError                 (cityops.errors)
     +-- JobError                every error the jobs lifecycle raises on purpose
          +-- JobNotFound        no such job
          +-- JobConflict        the route or the truck already has a job that is not completed;
          |    |                 a completed job cannot be started again, cancelled or reassigned
          |    +-- JobCancelled  the job was cancelled: nothing more may be done on it (says who, why)
          +-- InvalidJob         a job that cannot be made or completed as asked: the crew member,
                                 the route, the plan or its truck, the bins skipped, a mark (`field`)

The API answers them 404, 409 and 422 (ops_api/errors.py, the one handler); a decision or
plan that is not there comes from the pipelines (pipelines.errors.RouteDecisionNotFound).
"""

from __future__ import annotations

from datetime import datetime

from cityops.errors import CityOpsError


class JobError(CityOpsError):
    """Base of the jobs' deliberate errors."""


class JobNotFound(JobError):
    def __init__(self, job_id: int, *, hint: str | None = None) -> None:
        super().__init__(f"no job {job_id}", hint=hint)
        self.job_id = job_id


class JobConflict(JobError):
    pass


class JobCancelled(JobConflict):
    def __init__(self, job_id: int, by: str | None, at: datetime, reason: str | None) -> None:
        super().__init__(f"job {job_id} was cancelled by {by or 'an operator'} at {at:%Y-%m-%d %H:%M} UTC: {reason}",
                         hint="the crew's work on it is no longer needed; ask an operator if in doubt")
        self.job_id = job_id


class InvalidJob(JobError):
    """`field` names the culprit (assigned_to, crew, route_id, plan_id, truck, skipped, marks.<i>.<field>)."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message, hint=hint)
        self.field = field
