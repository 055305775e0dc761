"""Who may see which device, household and alert (pure: the routes ask, the queries filter).

Staff (operators, admins) see everything. A householder sees their own household and its
devices; anything else answers 404, so another household's id reveals nothing. Crews see
the sensors their work is about (gritting crews road sensors, waste crews bins) and the
alerts about them; never a home's devices.
"""

from __future__ import annotations

from ops_api.accounts.roles import Role, User
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


def household_for(user: User, household_id: str) -> str:
    """The household a user asks about, if they may see it: 404 for another household, 403 for crews."""
    if user.is_staff:
        return household_id
    if user.role is Role.HOUSEHOLDER:
        if household_id != user.household_id:
            raise NotFound("no such household")
        return household_id
    raise Forbidden(f"a {user.role.value} may not see households")


def own_household(user: User) -> str:
    if user.household_id is None:
        raise NotFound("no household is linked to your account",
                       hint="staff use /households/{household_id}; householders join by an invitation link")
    return user.household_id
