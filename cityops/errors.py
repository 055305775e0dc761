"""The core package's exceptions, grown from the contract's root (contract/errors.py).

    CityOpsError                  every error the platform raises on purpose (contract)
     +-- ConfigError              settings that cannot work (bad URL, placeholder secret) (contract)
     +-- StorageError             the database refused or could not be reached
     |    +-- DatabaseUnavailable     cannot connect (wrong host, port, password, name)
     |    +-- ExtensionError          TimescaleDB wanted but missing or not permitted
     |    +-- MigrationError          a migration failed; it was rolled back
     +-- EmbeddedServiceError     an embedded PostgreSQL or broker would not start
     +-- BrokerUnavailable        the MQTT broker could not be reached
     +-- PkiError                 `cityops pki`: no CA yet, a file in the way, a bad name (`path`)

Each carries `hint`: one line on what to do. The CLI prints `error: <message>` and
`hint: <hint>` and exits 1; nothing below it prints a traceback for these.
"""

from __future__ import annotations

from contract.errors import CityOpsError, ConfigError

__all__ = ["BrokerUnavailable", "CityOpsError", "ConfigError", "DatabaseUnavailable", "EmbeddedServiceError",
           "ExtensionError", "MigrationError", "PkiError", "StorageError"]


class StorageError(CityOpsError):
    # SQLSTATE classes that pass: connection trouble, insufficient resources, operator
    # intervention (shutdown, restart), transaction rollback (serialization, deadlock)
    TRANSIENT_CLASSES = ("08", "53", "57", "40")

    def __init__(self, message: str, *, hint: str | None = None, sqlstate: str | None = None):
        super().__init__(message, hint=hint)
        self.sqlstate = sqlstate

    @property
    def transient(self) -> bool:
        """Worth retrying: the connection went, or the server is restarting or overloaded."""
        return self.sqlstate is None or self.sqlstate[:2] in self.TRANSIENT_CLASSES


class DatabaseUnavailable(StorageError):
    hint = "check CITYOPS_DATABASE_URL, or unset it to use the embedded PostgreSQL"


class ExtensionError(StorageError):
    pass


class MigrationError(StorageError):
    def __init__(self, message: str, *, version: int, hint: str | None = None,
                 sqlstate: str | None = None):
        super().__init__(message, hint=hint, sqlstate=sqlstate)
        self.version = version


class EmbeddedServiceError(CityOpsError):
    pass


class BrokerUnavailable(CityOpsError):
    hint = "check CITYOPS_MQTT_URL, or unset it to use the embedded broker"


class PkiError(CityOpsError):
    hint = "run `cityops pki init` first; see docs/operations.md, \"TLS\""

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path
