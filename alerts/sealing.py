"""Webhook secrets sealed at rest (Fernet: AES-128-CBC with HMAC-SHA256, from `cryptography`).

A webhook's HMAC secret has to be readable by the sender, so it cannot be hashed like a
password; it is stored sealed with a key from the settings (`CITYOPS_ALERTS__SECRET_KEYS`,
a JSON list of Fernet keys: the first seals, every one opens, so keys rotate by putting
the new one first and running `cityops alerts seal-secrets`). A database dump or a reader
of the table learns nothing without the key. `cityops alerts new-key` makes a key.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from alerts.errors import SecretsKeyError
from cityops.settings import AlertsSettings

SEALED = "sealed:v1:"


def new_key() -> str:
    return Fernet.generate_key().decode()


def sealer_for(settings: AlertsSettings) -> Sealer | None:
    """The settings' sealer, None when no key is set (nothing can be sealed or opened then)."""
    keys = [k.get_secret_value() for k in settings.secret_keys]
    return Sealer(keys) if keys else None


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED)


class Sealer:
    """Seals and opens webhook secrets with the configured keys (the first one seals)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretsKeyError("no key to seal webhook secrets with: set CITYOPS_ALERTS__SECRET_KEYS")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except (ValueError, TypeError):
            raise SecretsKeyError("CITYOPS_ALERTS__SECRET_KEYS holds a value that is not a Fernet key "
                                  "(32 bytes, url-safe base64)") from None

    def seal(self, secret: str) -> str:
        return SEALED + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            raise SecretsKeyError("a webhook secret is stored in clear", hint="run `cityops alerts seal-secrets`")
        try:
            return self._fernet.decrypt(stored[len(SEALED):].encode()).decode()
        except InvalidToken:
            raise SecretsKeyError("a webhook secret was sealed with a key that is not in "
                                  "CITYOPS_ALERTS__SECRET_KEYS") from None

    def reseal(self, stored: str) -> str:
        """Sealed with the first key (a secret in clear, or sealed with an older key)."""
        return self.seal(self.open(stored) if is_sealed(stored) else stored)
