"""Device and service-account secrets: random, shown once, stored only as a hash.

The hash is Mosquitto's own PBKDF2-SHA512 format (`$7$<iterations>$<salt>$<hash>`, what
`mosquitto_passwd` writes), so the broker's password file is generated from the database
without the secret ever being stored. The secrets are 256 random bits: the iteration count
(Mosquitto's default, 101) does not need to slow down guessing, and keeps a fleet's
reconnect storm cheap for the broker.

The NATS cluster (docs/nats.md) cannot read that format, so each secret also gets a bcrypt
hash (`$2a$`, what NATS 2.9's config takes) when it is issued, at bcrypt's lowest cost for
the same reason: 256 random bits need no slowing down, a reconnect storm does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import bcrypt

ITERATIONS = 101
SALT_BYTES = 12
BCRYPT_ROUNDS = 4  # bcrypt's minimum (above)


def new_secret() -> str:
    """43 URL-safe characters (256 bits)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    iterations, salt = int(parts[2]), base64.b64decode(parts[3])
    return hmac.compare_digest(hash_secret(secret, salt=salt, iterations=iterations), stored)


def bcrypt_secret(secret: str) -> str:
    """The `$2a$` bcrypt hash NATS 2.9 checks a password against (Go's bcrypt reads 2a)."""
    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS, prefix=b"2a")).decode()
