"""Users (admins) and householder invitations (operators and admins).

    GET /users, POST /users, GET /users/{user_id}, PATCH /users/{user_id}   admin
    POST /invitations                                                      operator, admin
    POST /users/{user_id}/end-tenancy {reason}                             operator, admin

The last enabled admin cannot be disabled or demoted: someone must be able to manage users.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ops_api.accounts import invitations, store, tenancies
from ops_api.accounts.roles import Role
from ops_api.accounts.store import UserRecord
from ops_api.deps import DB, Admin, AppSettings, Staff
from ops_api.errors import Conflict, InvalidRequest

router = APIRouter(tags=["users"])


class UserDetail(BaseModel):
    user_id: str
    username: str
    role: Role
    household_id: str | None
    display_name: str
    disabled: bool
    created_at: datetime
    created_by: str | None
    has_password: bool

    @classmethod
    def of(cls, record: UserRecord) -> UserDetail:
        return cls.model_validate({**record.user.as_json(), "disabled": record.disabled,
                                   "created_at": record.created_at, "created_by": record.created_by,
                                   "has_password": record.has_password})


class NewUserIn(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    role: Role
    household_id: str | None = Field(default=None, max_length=64)
    display_name: str | None = Field(default=None, max_length=200)


class UserChanges(BaseModel):
    display_name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    household_id: str | None = Field(default=None, max_length=64)
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=256)


class InvitationIn(BaseModel):
    household_id: str = Field(min_length=1, max_length=64)
    new_tenancy: bool = Field(default=True, description="true: a new tenancy, ending the current members' access "
                                                        "now; false: join the current tenancy (a partner, a flatmate)")


class InvitationOut(BaseModel):
    household_id: str
    url: str
    token: str
    expires_at: datetime
    new_tenancy: bool
    ended_memberships: int


class EndTenancyIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="why (kept with the membership)")


class TenancyOut(BaseModel):
    membership_id: int
    user_id: str
    household_id: str
    starts_at: datetime
    ends_at: datetime | None
    ended_by: str | None
    end_reason: str | None


@router.get("/users", summary="All users (admin)")
async def list_users(db: DB, admin: Admin, role: Role | None = None,
                     household_id: str | None = None) -> list[UserDetail]:
    return [UserDetail.of(r) for r in await store.list_users(db, role=role, household_id=household_id)]


def _not_a_landlord(role: Role | None) -> None:
    """A landlord officer is made with their organisation, which these routes do not take yet."""
    if role is Role.LANDLORD:
        raise InvalidRequest("a landlord officer needs the landlord organisation they work for", field="role",
                             hint="cityops user add NAME --role landlord --landlord ID")


@router.post("/users", status_code=201, summary="Create a user (admin)",
             responses={409: {"description": "the username is taken"}})
async def create_user(body: NewUserIn, db: DB, admin: Admin) -> UserDetail:
    _not_a_landlord(body.role)
    user = await store.create_user(db, username=body.username, password=body.password, role=body.role,
                                   household_id=body.household_id, display_name=body.display_name,
                                   created_by=admin.user_id)
    return UserDetail.of(await store.get_user(db, user.user_id))


@router.get("/users/{user_id}", summary="One user (admin)")
async def get_user(user_id: str, db: DB, admin: Admin) -> UserDetail:
    return UserDetail.of(await store.get_user(db, user_id))


@router.patch("/users/{user_id}", summary="Change a user: name, role, household, disabled, password (admin)",
              responses={409: {"description": "would leave no enabled admin"}})
async def update_user(user_id: str, body: UserChanges, db: DB, admin: Admin) -> UserDetail:
    _not_a_landlord(body.role)
    current = await store.get_user(db, user_id)
    loses_admin = body.disabled or (body.role is not None and body.role is not Role.ADMIN)
    if current.user.role is Role.ADMIN and not current.disabled and loses_admin and await store.count_admins(db) <= 1:
        raise Conflict("this is the last enabled admin", hint="make another admin first")
    return UserDetail.of(await store.update_user(db, user_id, display_name=body.display_name, role=body.role,
                                                 household_id=body.household_id, disabled=body.disabled,
                                                 password=body.password, changed_by=admin.user_id))


@router.post("/invitations", status_code=201, summary="Invite a householder: a single-use link for their household",
             description="The link is shown once; send it to the householder. It expires after "
                         "CITYOPS_ACCOUNTS__INVITATION_TTL (7 days by default).")
async def invite(body: InvitationIn, db: DB, user: Staff, settings: AppSettings) -> InvitationOut:
    invitation = await invitations.create_invitation(db, body.household_id, created_by=user.user_id,
                                                     ttl=settings.accounts.invitation_ttl, new_tenancy=body.new_tenancy)
    return InvitationOut(household_id=invitation.household_id, url=invitation.url(settings.accounts.public_base_url),
                         token=invitation.token, expires_at=invitation.expires_at,
                         new_tenancy=invitation.new_tenancy, ended_memberships=len(invitation.ended))


@router.post("/users/{user_id}/end-tenancy", summary="End a householder's membership of their household, with a "
                                                     "reason (operator, admin)",
             responses={409: {"description": "no current tenancy"}})
async def end_tenancy(user_id: str, body: EndTenancyIn, db: DB, user: Staff) -> TenancyOut:
    ended = await tenancies.end(db, user_id, by=user.user_id, reason=body.reason)
    return TenancyOut.model_validate(ended.as_json())
