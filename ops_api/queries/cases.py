"""Which damp and mould cases and homes a user may work (the cases routes ask, the lifecycle filters).

Council officers (operators, admins) work every landlord's homes; a landlord officer only
their organisation's (users.landlord_id, looked up on every request, so a move takes effect
at once; one with none recorded sees nothing). Another landlord's case or home answers 404
worded exactly as a missing one (cases.lifecycle words both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cases import store
from cityops.storage import Database
from ops_api.accounts.roles import Role, User


@dataclass(frozen=True)
class CaseScope:
    """All landlords' cases, or one landlord's (None: none at all)."""

    all_landlords: bool
    landlord_id: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """The lifecycle's scoping arguments."""
        return {"all_landlords": self.all_landlords, "landlord_id": self.landlord_id}


async def case_scope(db: Database, user: User) -> CaseScope:
    if user.is_staff:
        return CaseScope(all_landlords=True)
    if user.role is Role.LANDLORD:
        return CaseScope(all_landlords=False, landlord_id=await store.user_landlord(db, user.user_id))
    return CaseScope(all_landlords=False)   # the routes' roles keep everyone else out before this
