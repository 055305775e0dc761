"""Roles and the signed-in user: the value objects every route sees (re-exported by ops_api.deps)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"
    GRITTING_CREW = "gritting_crew"
    WASTE_CREW = "waste_crew"
    HOUSEHOLDER = "householder"
    ADMIN = "admin"
    LANDLORD = "landlord"   # a housing officer of one landlord organisation (users.landlord_id): its homes' cases


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    role: Role
    household_id: str | None
    display_name: str

    def __post_init__(self) -> None:
        if (self.role is Role.HOUSEHOLDER) != (self.household_id is not None):
            raise ValueError("a householder has a household_id, and only a householder")

    @property
    def is_staff(self) -> bool:
        """Sees everything: operators and admins."""
        return self.role in (Role.OPERATOR, Role.ADMIN)

    def as_json(self) -> dict[str, str | None]:
        return {"user_id": self.user_id, "username": self.username, "role": self.role.value,
                "household_id": self.household_id, "display_name": self.display_name}
