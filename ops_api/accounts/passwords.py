"""Password hashing with argon2id (argon2-cffi's defaults: RFC 9106's low-memory profile).

Hashing takes a few hundred milliseconds and 64 MiB on purpose, so it runs in a worker
thread and never blocks the event loop. Unknown usernames are checked against a dummy hash
so a login takes as long whether or not the name exists.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ops_api.errors import InvalidRequest

MIN_LENGTH = 10
MAX_LENGTH = 256  # hashing a megabyte of "password" is a denial of service, not a password
_hasher = PasswordHasher()


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidRequest(f"must be at least {MIN_LENGTH} characters", field="password",
                             hint="a few unrelated words make a long password that is easy to remember")
    if len(password) > MAX_LENGTH:
        raise InvalidRequest(f"must be at most {MAX_LENGTH} characters", field="password")


async def hash_password(password: str) -> str:
    check_strength(password)
    return await asyncio.to_thread(_hasher.hash, password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("not anyone's password")


def _verify(stored: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; a None `stored` (no such user, or no password) never matches."""
    return await asyncio.to_thread(_verify, stored, password)
