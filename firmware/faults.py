"""Log a fault once, not at every retry: the first occurrence (or a change of cause) is a
warning, repeats are silent but counted, and recovery is logged with the count."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field


@dataclass
class FaultLog:
    logger: logging.Logger
    _active: dict[str, tuple[str, int]] = field(default_factory=dict)

    def report(self, key: str, cause: str) -> bool:
        """Record a fault; True when it was logged (new or changed cause)."""
        previous = self._active.get(key)
        if previous is not None and previous[0] == cause:
            self._active[key] = (cause, previous[1] + 1)
            return False
        self._active[key] = (cause, 1)
        self.logger.warning("%s: %s (will keep retrying; logged once)", key, cause)
        return True

    def clear(self, key: str) -> None:
        previous = self._active.pop(key, None)
        if previous is not None:
            self.logger.info("%s: recovered after %d failed attempt(s)", key, previous[1])

    def active(self) -> dict[str, str]:
        return {key: cause for key, (cause, _) in self._active.items()}
