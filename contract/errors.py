"""The contract's exceptions, the root of every package's tree.

    CityOpsError            every error the platform or the agent raises on purpose
     +-- ConfigError        settings that cannot work (a bad URL, a placeholder secret)
     +-- ReleaseInvalid     a release, its manifest or a signature does not check out

Each carries `hint`: one line on what to do. The core (cityops/errors.py), the services and
the agent (firmware/errors.py) grow their trees from CityOpsError.
"""

from __future__ import annotations


class CityOpsError(Exception):
    """Base of every deliberate error; `hint` says what to do about it."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(CityOpsError):
    hint = "check the CITYOPS_ environment variables or the .env file (see README)"


class ReleaseInvalid(CityOpsError):
    hint = "check the release was built and signed with the fleet's key (docs/releases.md)"
