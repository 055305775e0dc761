"""Who may call each route, in one table: (method, path) -> Access.

The routes enforce it with the dependencies in ops_api.deps (`Staff`, `Admin`,
`GrittingReader`, `allow(...)`, `CurrentUser`) and the scope rules in ops_api.queries.scope;
this table says what they should do, and tests/test_api_access_matrix.py calls every route
in `app.routes` as every role and as nobody and checks the answer against it. A route
missing here fails that test: add its line when you add a route.

    roles             who may call it (an admin always may); others get 403, nobody 401
    household_scoped  a householder sees only their own household's data: another
                      household's id in the URL answers 404, as if it did not exist
    public            no sign-in (open data, the login itself, the page shells)
    device            devices authenticate (HTTP Basic with their secret), never users
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from ops_api.accounts.roles import Role

R = Role


@dataclass(frozen=True)
class Access:
    roles: frozenset[Role] = frozenset()
    household_scoped: bool = False
    public: bool = False
    device: bool = False

    def allows(self, role: Role | None) -> bool:
        """May this role (None: nobody signed in) call the route at all?"""
        if self.public:
            return True
        if self.device or role is None:
            return False
        return role is Role.ADMIN or role in self.roles


def roles(*allowed: Role, household_scoped: bool = False) -> Access:
    return Access(frozenset((*allowed, Role.ADMIN)), household_scoped=household_scoped)


PUBLIC = Access(public=True)
DEVICE = Access(device=True)
ANYONE_SIGNED_IN = roles(*Role)
STAFF = roles(R.OPERATOR)
ADMIN = roles()
GRITTING = roles(R.OPERATOR, R.GRITTING_CREW)
WASTE = roles(R.OPERATOR, R.WASTE_CREW)
CREWS = roles(R.OPERATOR, R.GRITTING_CREW, R.WASTE_CREW)  # crews: only the jobs assigned to them
SCOPED = roles(*Role, household_scoped=True)  # householders: their household; crews: their kind of device
OWN_HOUSEHOLD = roles(R.HOUSEHOLDER, household_scoped=True)  # an admin has no household: 404
A_HOUSEHOLD = roles(R.OPERATOR, R.HOUSEHOLDER, household_scoped=True)
CASEWORK = roles(R.OPERATOR, R.LANDLORD)  # landlord officers: their organisation's homes only (404 for others')

ACCESS: dict[tuple[str, str], Access] = {
    # service and pages (the page shells are static; their data comes from the routes below)
    ("GET", "/"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("GET", "/invite/{token}"): PUBLIC,
    ("GET", "/home"): PUBLIC,
    ("GET", "/crew"): PUBLIC,
    ("GET", "/landlord"): PUBLIC,
    ("GET", "/landlord/cases/{case_id}"): PUBLIC,
    ("GET", "/landlord/dashboard"): PUBLIC,
    ("GET", "/crew/jobs/{job_id}"): PUBLIC,
    ("GET", "/operator"): PUBLIC,   # the shell; operator.js sends anyone else to their own page
    ("GET", "/sw.js"): PUBLIC,      # the service worker: the crew's pages offline
    ("GET", "/releases/{version}/agent.tar.gz"): DEVICE,
    # accounts
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/logout"): PUBLIC,  # signs out whatever session it is given; nothing to refuse
    ("GET", "/auth/me"): ANYONE_SIGNED_IN,
    ("POST", "/auth/invitations/accept"): PUBLIC,  # the invitation token is the credential
    ("GET", "/users"): ADMIN,
    ("POST", "/users"): ADMIN,
    ("GET", "/users/{user_id}"): ADMIN,
    ("PATCH", "/users/{user_id}"): ADMIN,
    ("POST", "/invitations"): STAFF,
    ("POST", "/users/{user_id}/end-tenancy"): STAFF,
    ("POST", "/admin/devices"): ADMIN,
    ("PATCH", "/admin/devices/{device_id}"): ADMIN,
    ("POST", "/admin/devices/{device_id}/retire"): ADMIN,
    ("POST", "/admin/devices/{device_id}/rotate"): ADMIN,
    # devices and readings
    ("GET", "/devices"): SCOPED,
    ("GET", "/devices/{device_id}"): SCOPED,
    ("GET", "/devices/{device_id}/health"): SCOPED,
    ("GET", "/readings/{device_id}"): SCOPED,
    # households
    ("GET", "/households/me"): OWN_HOUSEHOLD,
    ("GET", "/households/me/history"): OWN_HOUSEHOLD,
    ("GET", "/households/me/diary"): OWN_HOUSEHOLD,
    ("POST", "/households/me/diary"): OWN_HOUSEHOLD,
    ("DELETE", "/households/me/diary/{entry_id}"): OWN_HOUSEHOLD,
    ("GET", "/households/me/diary/advice"): OWN_HOUSEHOLD,
    ("GET", "/households/me/report"): OWN_HOUSEHOLD,
    ("POST", "/households/me/reports"): OWN_HOUSEHOLD,   # damp or mould, with photos: opens or joins the case
    ("GET", "/households/me/case"): OWN_HOUSEHOLD,
    ("GET", "/households/me/case/photos/{photo_id}"): OWN_HOUSEHOLD,
    ("GET", "/households/me/case/evidence.pdf"): OWN_HOUSEHOLD,   # the householder's copy of the pack
    ("GET", "/households/me/case/evidence.csv"): OWN_HOUSEHOLD,
    ("GET", "/households/{household_id}"): A_HOUSEHOLD,
    ("GET", "/households/{household_id}/history"): A_HOUSEHOLD,
    ("GET", "/households/{household_id}/diary"): A_HOUSEHOLD,
    ("GET", "/households/{household_id}/diary/advice"): A_HOUSEHOLD,
    ("GET", "/households/{household_id}/report"): A_HOUSEHOLD,
    ("GET", "/households/{household_id}/tenancies"): STAFF,   # who lived there: never shown to householders
    # gritting and bins
    ("GET", "/gritting/runs/latest"): GRITTING,
    ("GET", "/gritting/segments"): GRITTING,
    ("GET", "/gritting/routes"): GRITTING,
    ("GET", "/gritting/routes/{route_id}/plan"): GRITTING,
    ("GET", "/gritting/routes/{route_id}/sheet"): GRITTING,
    ("POST", "/gritting/runs/{run_id}/routes/{route_id}/acknowledge"): STAFF,   # the duty officer
    ("GET", "/gritting/log"): STAFF,
    ("GET", "/bins/priorities"): WASTE,
    ("GET", "/bins/plans"): WASTE,
    ("GET", "/bins/plans/{plan_id}"): WASTE,
    ("GET", "/bins/plans/{plan_id}/trucks/{truck}"): WASTE,
    # the basemap: streets and depots in a box, under the pages' maps
    ("GET", "/basemap"): CREWS,
    # jobs
    ("GET", "/jobs"): CREWS,
    ("POST", "/jobs"): STAFF,
    ("GET", "/jobs/{job_id}"): CREWS,
    ("POST", "/jobs/{job_id}/start"): CREWS,
    ("POST", "/jobs/{job_id}/complete"): CREWS,
    ("POST", "/jobs/{job_id}/marks"): CREWS,
    ("POST", "/jobs/{job_id}/cancel"): STAFF,
    ("POST", "/jobs/{job_id}/reassign"): STAFF,
    ("GET", "/jobs/{job_id}/sheet"): CREWS,
    # damp and mould cases, landlords and homes (householders: /households/me/reports and /case)
    ("GET", "/cases"): CASEWORK,
    ("POST", "/cases"): CASEWORK,
    ("GET", "/cases/stats"): CASEWORK,
    ("GET", "/cases/{case_id}"): CASEWORK,
    ("POST", "/cases/{case_id}/triage"): CASEWORK,
    ("POST", "/cases/{case_id}/events"): CASEWORK,
    ("POST", "/cases/{case_id}/close"): CASEWORK,
    ("GET", "/cases/{case_id}/evidence.pdf"): CASEWORK,   # the full evidence pack
    ("GET", "/cases/{case_id}/evidence.csv"): CASEWORK,
    ("GET", "/landlords"): ADMIN,
    ("POST", "/landlords"): ADMIN,
    ("PUT", "/homes/{household_id}"): ADMIN,
    # alerts and the in-app feed
    ("GET", "/alerts"): SCOPED,
    ("GET", "/alerts/{alert_id}"): SCOPED,
    ("POST", "/alerts/{alert_id}/acknowledge"): STAFF,
    ("GET", "/me/notifications"): ANYONE_SIGNED_IN,  # each user's own
    ("POST", "/me/notifications/{notification_id}/read"): ANYONE_SIGNED_IN,
    # open data: aggregated, never a household's readings
    ("GET", "/open"): PUBLIC,
    ("GET", "/open/road-temperatures.geojson"): PUBLIC,
    ("GET", "/open/road-temperatures.csv"): PUBLIC,
    ("GET", "/open/bin-fill.geojson"): PUBLIC,
    ("GET", "/open/bin-fill.csv"): PUBLIC,
    ("GET", "/open/damp-areas.json"): PUBLIC,
    ("GET", "/open/damp-areas.csv"): PUBLIC,
}

# FastAPI's own documentation routes and the static files: not the API's to guard
UNGUARDED_PATHS = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static")


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    route: APIRoute


def api_routes(app: FastAPI) -> Iterator[RouteInfo]:
    """Every (method, path) the app answers, included routers expanded (HEAD is GET's)."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path
        if path is None or path in UNGUARDED_PATHS or not isinstance(route, APIRoute):
            continue
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                yield RouteInfo(method, path, route)


def undeclared(app: FastAPI) -> list[tuple[str, str]]:
    """Routes the app has that the table does not (each one a failure of the matrix test)."""
    return [(r.method, r.path) for r in api_routes(app) if (r.method, r.path) not in ACCESS]


def dependency_calls(route: APIRoute) -> list[Callable[..., Any]]:
    """Every dependency the route runs, nested ones included."""

    def walk(dependant: Any) -> Iterator[Callable[..., Any]]:
        for sub in dependant.dependencies:
            yield sub.call
            yield from walk(sub)

    return list(walk(route.dependant))


def enforced_roles(route: APIRoute) -> frozenset[Role] | None:
    """The roles the route's `allow(...)` dependencies let through, or None if it has none."""
    sets = [roles for call in dependency_calls(route) if (roles := getattr(call, "roles", None)) is not None]
    return frozenset.intersection(*sets) if sets else None
