"""The updater's exceptions (part of the agent's tree).

    AgentError
     +-- UpdateError               an offered release was not installed; `reason` goes in the report
          +-- DownloadFailed       the download did not complete; `retry_after_s` when it may be tried again
          +-- VerificationFailed   checksum, signature or manifest do not match: the archive is refused
          +-- NoSpace              not enough free space to download or install it
          +-- InstallFailed        unpacking or installing the dependencies failed
"""

from __future__ import annotations

from firmware.errors import AgentError


class UpdateError(AgentError):
    hint = "the device keeps running its current version; see the report's reason"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class DownloadFailed(UpdateError):
    def __init__(self, reason: str, *, retry_after_s: float | None = None, permanent: bool = False):
        super().__init__(reason)
        self.retry_after_s = retry_after_s
        self.permanent = permanent


class VerificationFailed(UpdateError):
    hint = "the archive was refused and deleted: check the release was signed with the fleet's key"


class NoSpace(UpdateError):
    hint = "free space on the device (old spools, logs) or build a smaller release"


class InstallFailed(UpdateError):
    pass
