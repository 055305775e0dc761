"""Signing in and out: POST /auth/login (OAuth2 password form), /auth/logout, GET /auth/me,
and POST /auth/invitations/accept (a householder's first sign-in, from an invitation link).

A login answers the token in the body (for API clients: `Authorization: Bearer <token>`)
and as the session cookie for the web pages (`__Host-cityops_session`: HttpOnly, Secure,
SameSite=Lax, Path=/; in the demo `cityops_session`, Secure only over https). Each attempt is
reserved with the login limit before its password is hashed (429 with Retry-After when it
may not go ahead; ops_api.accounts.ratelimit).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from cityops.settings import Settings
from cityops.storage import Database
from ops_api.accounts import invitations, sessions, store
from ops_api.accounts.passwords import verify_password
from ops_api.accounts.ratelimit import LoginLimits, finish_attempt, purge_attempts, reserve_attempt
from ops_api.accounts.roles import Role, User
from ops_api.clientinfo import limit_key
from ops_api.deps import DB, AppSettings, CurrentUser, session_cookie, session_token
from ops_api.errors import NotAuthenticated

router = APIRouter(prefix="/auth", tags=["auth"])


class UserOut(BaseModel):
    user_id: str
    username: str
    role: Role
    household_id: str | None
    display_name: str

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(user_id=user.user_id, username=user.username, role=user.role,
                   household_id=user.household_id, display_name=user.display_name)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserOut


class AcceptInvitation(BaseModel):
    token: str = Field(min_length=1, max_length=512)
    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    display_name: str | None = Field(default=None, max_length=200)


def client_key(request: Request) -> str:
    """The client as the login limit counts it (behind trusted proxies: the real client)."""
    return limit_key(request.client.host) if request.client else "unknown"


def login_limits(settings: Settings) -> LoginLimits:
    s = settings.accounts
    return LoginLimits(s.login_max_failures, s.login_max_failures_per_client, s.login_window,
                       s.login_delay, s.login_max_delay, s.login_known_client_for)


def _cookie_secure(settings: Settings, request: Request) -> bool:
    return not settings.accounts.insecure_localhost or request.url.scheme == "https"


async def _signed_in(db: Database, settings: Settings, user: User, request: Request, response: Response) -> TokenOut:
    token = await sessions.open_session(db, user.user_id, ttl=settings.accounts.session_ttl)
    expires = await sessions.expires_at(db, token)
    assert expires is not None
    response.set_cookie(session_cookie(settings), token, max_age=int(settings.accounts.session_ttl.total_seconds()),
                        httponly=True, samesite="lax", secure=_cookie_secure(settings, request), path="/")
    return TokenOut(access_token=token, expires_at=expires, user=UserOut.of(user))


@router.post("/login", summary="Sign in with a username and password (OAuth2 password form)",
             responses={401: {"description": "wrong username or password"},
                        429: {"description": "too many failed logins; see Retry-After"}})
async def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, response: Response,
                db: DB, settings: AppSettings) -> TokenOut:
    username = form.username.strip().lower()[:128]
    attempt = await reserve_attempt(db, username, client_key(request), login_limits(settings))
    found = await store.password_hash_of(db, username)
    ok = await verify_password(found[1] if found else None, form.password)
    await finish_attempt(db, attempt, succeeded=ok and found is not None)
    await sessions.purge_expired(db)  # housekeeping, on the one route that is slow anyway
    await purge_attempts(db)
    if not ok or found is None:
        raise NotAuthenticated("wrong username or password",
                               hint="check both; after several failures, logins pause for a while")
    return await _signed_in(db, settings, found[0], request, response)


@router.post("/logout", status_code=204, summary="Sign out: the session token stops working")
async def logout(db: DB, settings: AppSettings, token: Annotated[str | None, Depends(session_token)],
                 request: Request, response: Response) -> None:
    if token is not None:
        await sessions.close_session(db, token)
    response.delete_cookie(session_cookie(settings), path="/", secure=_cookie_secure(settings, request),
                           httponly=True, samesite="lax")


@router.get("/me", summary="Who is signed in")
async def me(user: CurrentUser) -> UserOut:
    return UserOut.of(user)


@router.post("/invitations/accept", summary="Create a householder account from an invitation link, signed in",
             responses={404: {"description": "the invitation is unknown, used or expired"},
                        409: {"description": "the username is taken"}})
async def accept(body: AcceptInvitation, request: Request, response: Response, db: DB,
                 settings: AppSettings) -> TokenOut:
    user = await invitations.accept_invitation(db, body.token, username=body.username, password=body.password,
                                               display_name=body.display_name)
    return await _signed_in(db, settings, user, request, response)
