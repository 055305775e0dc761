"""The damp and mould cases' exceptions.

    CityOpsError                  (cityops.errors)
     +-- CaseError                every error the cases raise on purpose
          +-- CaseNotFound        no such case or home, or not the asker's to see (worded the same)
          +-- CaseConflict        the step does not fit the case's state: a home's second open case,
          |                       triaging an open case, recording on a closed one
          +-- InvalidCase         a value that breaks a rule; `field` names the culprit
          |    +-- InvalidPhoto   a photo refused (type, size, pixels, count): field "photos"
          +-- PhotoDamaged        a stored photo is missing or fails its checksum (the server's fault)

The API answers them 404, 409 and 422 (ops_api/errors.py, DOMAIN_ERRORS); PhotoDamaged is
not mapped: it is a 500 with the server's log, never the householder's fault.
"""

from __future__ import annotations

from cityops.errors import CityOpsError


class CaseError(CityOpsError):
    """Base of the cases' deliberate errors."""


class CaseNotFound(CaseError):
    pass


class CaseConflict(CaseError):
    pass


class InvalidCase(CaseError):
    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message, hint=hint)
        self.field = field


class InvalidPhoto(InvalidCase):
    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, field="photos", hint=hint)


class PhotoDamaged(CaseError):
    pass
