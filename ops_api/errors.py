"""The API's exceptions: domain errors that carry their HTTP status.

    CityOpsError
     +-- ApiError                  anything the API refuses; `status` is the HTTP status
          +-- NotAuthenticated     401: no session, or an unknown or expired one (WWW-Authenticate: Bearer)
          +-- Forbidden            403: signed in, but this role may not do that
          |    +-- CrossSiteRefused  403: an unsafe request from another site's page (Origin, Sec-Fetch-Site)
          +-- NotFound             404: no such thing, or not yours to see (another household's)
          +-- Conflict             409: it exists already (a username, a used invitation)
          +-- PayloadTooLarge      413: a request body over the route's limit
          +-- InvalidRequest       422: a value that breaks a rule; names the field when there is one
          +-- TooManyRequests      429: slow down; `retry_after_s` goes out as Retry-After

app.py's one handler turns them into `{"error": ..., "hint": ...}` with the status and headers
(`as_response`, which the ASGI guards call too); `invalid_input` tells it which database errors
are the request's fault (a 422, not a 503); `DOMAIN_ERRORS` how the services' own errors are
answered (`as_api_error`):

    jobs.errors.JobNotFound                 404    jobs.errors.JobConflict (JobCancelled)  409
    jobs.errors.InvalidJob                  422    rules.errors.DecisionLogError           422
    pipelines.errors.RouteDecisionNotFound  404
    cases.errors.CaseNotFound               404    cases.errors.CaseConflict               409
    cases.errors.InvalidCase (InvalidPhoto) 422
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from cases.errors import CaseConflict, CaseNotFound, InvalidCase
from cityops.errors import CityOpsError, StorageError
from jobs.errors import InvalidJob, JobConflict, JobNotFound
from pipelines.errors import RouteDecisionNotFound
from rules.errors import DecisionLogError


class ApiError(CityOpsError):
    status: int = 400

    @property
    def headers(self) -> dict[str, str]:
        return {}


class NotAuthenticated(ApiError):
    status = 401
    hint = "sign in at POST /auth/login and send the token as `Authorization: Bearer <token>`"

    def __init__(self, message: str = "not signed in", *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    status = 403
    hint = "ask an administrator if you need this"

    def __init__(self, message: str = "your role may not do this", *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)


class CrossSiteRefused(Forbidden):
    hint = "use this site's own pages, or an API client with a bearer token"


class NotFound(ApiError):
    status = 404
    hint = "check the id in the URL"


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over {limit} bytes", hint="send less")
        self.limit = limit


class InvalidRequest(ApiError):
    status = 422
    hint = "fix the value and send the request again"

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message, hint=hint)
        self.field = field


class TooManyRequests(ApiError):
    status = 429

    def __init__(self, message: str, *, retry_after_s: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint or f"wait {retry_after_s} s and try again")
        self.retry_after_s = max(1, int(retry_after_s))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


def as_response(exc: ApiError) -> JSONResponse:
    return JSONResponse({"error": str(exc), "hint": exc.hint}, status_code=exc.status, headers=exc.headers)


# SQLSTATEs a request's own values cause: text PostgreSQL cannot hold (a NUL character),
# a number beyond the column's range. Anything else from the database stays a 503.
_INPUT_SQLSTATES = {"22021": "text may not contain NUL characters or invalid UTF-8",
                    "22P05": "text may not contain NUL characters or invalid UTF-8",
                    "22003": "a number is out of range"}


def invalid_input(exc: StorageError) -> InvalidRequest | None:
    """The request's fault hidden in a database error (so a 422, not a 503), or None."""
    reason = _INPUT_SQLSTATES.get(exc.sqlstate or "")
    if reason is None and exc.sqlstate == "22000" and "out of int" in str(exc):  # asyncpg, before sending
        reason = "a number is out of range"
    return None if reason is None else InvalidRequest(reason, hint="check the values in the URL and the body")


# The services' domain errors as the API answers them, the first match winning; the message
# and the hint go out as they are (the API's class hint when the error has none).
DOMAIN_ERRORS: tuple[tuple[type[CityOpsError], type[NotFound | Conflict | InvalidRequest]], ...] = (
    (JobNotFound, NotFound),
    (JobConflict, Conflict),
    (InvalidJob, InvalidRequest),
    (RouteDecisionNotFound, NotFound),
    (DecisionLogError, InvalidRequest),
    (CaseNotFound, NotFound),
    (CaseConflict, Conflict),
    (InvalidCase, InvalidRequest),
)


def as_api_error(exc: CityOpsError) -> ApiError | None:
    """A service's domain error as the API error it is answered with, or None."""
    for domain, api in DOMAIN_ERRORS:
        if isinstance(exc, domain):
            return api(str(exc), hint=exc.hint or None)
    return None
