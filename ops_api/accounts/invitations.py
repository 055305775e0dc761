"""Invitation links: how a householder gets an account tied to their household.

An operator (or admin) invites for a household; the link `<public_base_url>/invite/<token>`
goes to the householder, who picks a username and password. A link works once and expires
(7 days by default); only its SHA-256 is stored, so the link is shown once, when created.

Tenancies: an invitation starts a new tenancy unless it says it joins the current one (a
partner or flatmate). Issuing a new-tenancy invitation ends every current member's access to
the household at once, and withdraws its other unused links, in one transaction: the council
issues it when the home changes hands, and waiting for the link to be used (days, or never)
would let the previous tenant watch the new one's first days. The invitee's own membership
starts when they accept: the gap between is nobody's but staff's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cityops.storage import Database
from ops_api.accounts import tenancies
from ops_api.accounts.roles import Role, User
from ops_api.accounts.sessions import new_token, token_hash
from ops_api.accounts.store import check_household, insert_user, prepare_user
from ops_api.errors import NotFound

DEFAULT_TTL = timedelta(days=7)


@dataclass(frozen=True)
class Invitation:
    token: str
    household_id: str
    expires_at: datetime
    new_tenancy: bool = True
    ended: tuple[tenancies.Tenancy, ...] = ()      # the memberships it ended

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/invite/{self.token}"


async def create_invitation(db: Database, household_id: str, *, created_by: str | None,
                            ttl: timedelta = DEFAULT_TTL, new_tenancy: bool = True) -> Invitation:
    """A link for the household. A new tenancy (the default) ends the current members' access
    and withdraws the household's other unused links now; `new_tenancy=False` joins the current one."""
    household = check_household(Role.HOUSEHOLDER, household_id.strip() if household_id else household_id)
    assert household is not None
    token = new_token()
    ended: list[tenancies.Tenancy] = []
    async with db.transaction() as conn:
        if new_tenancy:
            await conn.execute("UPDATE invitations SET revoked_at = now() WHERE household_id = $1 AND used_at IS NULL "
                               "AND revoked_at IS NULL AND expires_at > now()", household)
            ended = await tenancies.end_for_household(conn, household, by=created_by,
                                                      reason="a new tenancy: invitation issued")
        expires: datetime = await conn.fetchval(
            "INSERT INTO invitations (token_hash, role, household_id, created_by, expires_at, new_tenancy) "
            "VALUES ($1, 'householder', $2, $3, now() + $4::interval, $5) RETURNING expires_at",
            token_hash(token), household, created_by, ttl, new_tenancy)
    return Invitation(token, household, expires, new_tenancy, tuple(ended))


class InvitationUnusable(NotFound):
    hint = "ask the council for a new invitation link"

    def __init__(self) -> None:
        super().__init__("this invitation link is unknown, already used or expired")


async def pending_household(db: Database, token: str) -> str:
    """The household a usable invitation is for (the invite page shows it)."""
    household: str | None = await db.fetchval(
        "SELECT household_id FROM invitations WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL "
        "AND expires_at > now()",
        token_hash(token))
    if household is None:
        raise InvitationUnusable()
    return household


async def accept_invitation(db: Database, token: str, *, username: str, password: str,
                            display_name: str | None = None) -> User:
    """Create the householder the invitation is for, a member from now; the invitation is used up
    in the same transaction."""
    household = await pending_household(db, token)  # fail before the slow password hash
    new = await prepare_user(username=username, password=password, role=Role.HOUSEHOLDER, household_id=household,
                             display_name=display_name)
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "SELECT household_id, created_by FROM invitations WHERE token_hash = $1 AND used_at IS NULL "
            "AND revoked_at IS NULL AND expires_at > now() FOR UPDATE", token_hash(token))
        if row is None:  # used by someone else since the check
            raise InvitationUnusable()
        user = await insert_user(conn, replace(new, created_by=row["created_by"]))
        await conn.execute("UPDATE invitations SET used_at = now(), used_by = $2 WHERE token_hash = $1",
                           token_hash(token), user.user_id)
    return user
