"""The dashboards package's exceptions.

    CityOpsError
     +-- DashboardsError          anything the boards, their export or push refuse
          +-- MacroError          panel SQL with a Grafana macro or variable that cannot be expanded
          +-- ExportError         the JSON or provisioning files could not be written
          +-- GrafanaError        Grafana refused or could not be reached; carries `status`

Each carries a `hint`.
"""

from __future__ import annotations

from cityops.errors import CityOpsError


class DashboardsError(CityOpsError):
    pass


class MacroError(DashboardsError):
    hint = "check the macro's arguments against Grafana's PostgreSQL data source documentation"

    def __init__(self, message: str, *, macro: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.macro = macro


class ExportError(DashboardsError):
    hint = "check that the output folder exists and can be written"


class GrafanaError(DashboardsError):
    hint = "check --url and that the token belongs to a service account with the Editor or Admin role"

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
