"""Typed dependencies shared by the routes: the database, the settings, and who is asking.

    CurrentUser     the signed-in user (401 without a valid session)
    allow(*roles)   a dependency: 403 unless the user has one of the roles (admin always may)
    Staff           operators and admins;  Admin: admins only
    GrittingReader  operators, gritting crews (and admins);  WasteReader: operators, waste crews

A session token comes as `Authorization: Bearer <token>` or in the session cookie (the web
pages): `__Host-cityops_session` (Secure, Path=/, no Domain: no other site or subdomain can
set or read it), or `cityops_session` in the demo (accounts.insecure_localhost, plain http).
Which roles may call each route is also declared in ops_api/access.py, which the
authorization matrix test checks against what the routes do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from cityops.settings import Settings
from cityops.storage import Database
from ops_api.accounts.roles import Role, User
from ops_api.accounts.sessions import resolve_session
from ops_api.errors import Forbidden, NotAuthenticated

__all__ = ["DB", "SECURE_SESSION_COOKIE", "SESSION_COOKIE",
           "Admin", "AppSettings", "CurrentUser", "GrittingReader", "OptionalUser", "Role",
           "Staff", "User", "WasteReader", "allow", "current_user", "optional_user", "session_cookie",
           "session_token"]

SESSION_COOKIE = "cityops_session"             # the demo's (plain http on this machine)
SECURE_SESSION_COOKIE = "__Host-cityops_session"  # everywhere else
bearer = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False,
                              description="a session token from POST /auth/login (or the cityops_session cookie)")


async def get_db(request: Request) -> Database:  # async: a sync dependency costs a thread hop
    db: Database = request.app.state.db
    return db


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DB = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]


def session_cookie(settings: Settings) -> str:
    """The session cookie's name: only the one these settings set is ever read."""
    return SESSION_COOKIE if settings.accounts.insecure_localhost else SECURE_SESSION_COOKIE


async def session_token(request: Request, bearer_token: Annotated[str | None, Depends(bearer)]) -> str | None:
    """The token the request carries: the bearer header first, else the session cookie."""
    return bearer_token or request.cookies.get(session_cookie(request.app.state.settings)) or None


async def optional_user(db: DB, token: Annotated[str | None, Depends(session_token)]) -> User | None:
    """The signed-in user, or None (for pages that show a login form instead)."""
    if token is None:
        return None
    session = await resolve_session(db, token)
    return None if session is None else session.user


async def current_user(db: DB, token: Annotated[str | None, Depends(session_token)]) -> User:
    if token is None:
        raise NotAuthenticated()
    session = await resolve_session(db, token)
    if session is None:
        raise NotAuthenticated("the session token is unknown or has expired", hint="sign in again at POST /auth/login")
    return session.user


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]


def allow(*roles: Role) -> Callable[..., Awaitable[User]]:
    """A dependency that lets these roles (and admins) through and answers 403 to the others."""
    allowed = frozenset((*roles, Role.ADMIN))

    async def allowed_user(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise Forbidden(f"{_article(user.role.value)} {user.role.value} may not do this (it needs: "
                            f"{', '.join(sorted(r.value for r in allowed))})")
        return user

    allowed_user.roles = allowed  # type: ignore[attr-defined]  # for the access table's checks
    return allowed_user


Staff = Annotated[User, Depends(allow(Role.OPERATOR))]
Admin = Annotated[User, Depends(allow())]
GrittingReader = Annotated[User, Depends(allow(Role.OPERATOR, Role.GRITTING_CREW))]
WasteReader = Annotated[User, Depends(allow(Role.OPERATOR, Role.WASTE_CREW))]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
