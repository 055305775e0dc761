"""Who may see which device, household and alert (pure: the routes ask, the queries filter).

Staff (operators, admins) see everything. A householder sees their own household and its
devices, and only through their tenancy (ops_api.accounts.tenancies): while it is open and
from its start, never a previous tenant's period; anything else answers 404, so another
household's id reveals nothing. Crews see the sensors their work is about (gritting crews
road sensors, waste crews bins) and the alerts about them; never a home's devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ops_api.accounts.roles import Role, User
from ops_api.accounts.tenancies import Tenancy
from ops_api.errors import Forbidden, NotFound

CREW_DEVICE_KINDS: dict[Role, tuple[str, ...]] = {Role.GRITTING_CREW: ("road",), Role.WASTE_CREW: ("bin",)}
CREW_ALERT_RULES: dict[Role, tuple[str, ...]] = {
    Role.GRITTING_CREW: ("road_freeze", "route_treatment"),
    Role.WASTE_CREW: ("bin_overflow", "bin_fire", "bin_tilt"),
}


def device_kinds(user: User) -> tuple[str, ...] | None:
    """The device kinds a user may see (None: all of them); householders are filtered by household."""
    if user.is_staff:
        return None
    if user.role is Role.HOUSEHOLDER:
        return ("frog", "road", "bin")
    return CREW_DEVICE_KINDS.get(user.role, ())


def may_see_device(user: User, kind: str, household_id: str | None) -> bool:
    if user.is_staff:
        return True
    if user.role is Role.HOUSEHOLDER:
        return household_id is not None and household_id == user.household_id
    return kind in CREW_DEVICE_KINDS.get(user.role, ())


@dataclass(frozen=True)
class HouseholdView:
    """What one user may see of one household: all of it (staff), or from their tenancy's start."""

    household_id: str
    since: datetime | None = None       # None: the whole history

    def clip(self, moment: datetime) -> datetime:
        """The later of `moment` and the start of what may be seen."""
        return moment if self.since is None or moment >= self.since else self.since


def household_for(user: User, household_id: str, tenancy: Tenancy | None) -> HouseholdView:
    """The household a user asks about, if they may see it: 404 for another household (and for
    their own once their tenancy has ended), 403 for crews."""
    if user.is_staff:
        return HouseholdView(household_id)
    if user.role is Role.HOUSEHOLDER:
        if household_id != user.household_id or tenancy is None or tenancy.household_id != household_id:
            raise NotFound("no such household")
        return HouseholdView(household_id, tenancy.starts_at)
    raise Forbidden(f"a {user.role.value} may not see households")


def own_household(user: User, tenancy: Tenancy | None) -> HouseholdView:
    """A householder's own household through their open tenancy; 404 without one."""
    if user.household_id is None:
        raise NotFound("no household is linked to your account",
                       hint="staff use /households/{household_id}; householders join by an invitation link")
    if tenancy is None or tenancy.household_id != user.household_id:
        raise NotFound("your account is no longer linked to a current tenancy",
                       hint="if you live there, ask the council for a new invitation link")
    return HouseholdView(user.household_id, tenancy.starts_at)
