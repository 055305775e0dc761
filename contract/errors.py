"""The contract's exceptions, the root of every package's tree.

    CityOpsError            every error the platform or the agent raises on purpose
     +-- ConfigError        settings that cannot work (a bad URL, a placeholder secret)
     +-- ReleaseInvalid     a release, its manifest or a signature does not check out

Each carries `hint`: one line on what to do. The core (cityops/errors.py), the services and
the agent (firmware/errors.py) grow their trees from CityOpsError.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


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


def run_command(body: Callable[[], int]) -> int:
    """A command's exit code: `body`'s, or 1 after printing a deliberate error as `error:` and
    `hint:` lines on stderr, or 130 on Ctrl-C; never a traceback for these (every entry point)."""
    try:
        return body()
    except CityOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
