"""The updater's exceptions (part of the agent's tree).

    AgentError
     +-- UpdateError               an offered release was not installed; `reason` goes in the report
          +-- UpdatesDisabled      this device cannot take updates as configured (no public_key, no
          |                        usable base_url): reported, not remembered against the version
          +-- OfferRefused         an offer that is not signed, fresh, current and newer: logged only
          |                        (never reported, never remembered: a forged offer must not be able
          |                        to pause a rollout or block a genuine version)
          +-- DownloadFailed       the download did not complete; `retry_after_s` when it may be tried again
          +-- VerificationFailed   checksum, signature or manifest do not match: the archive is refused
          +-- NoSpace              not enough free space to download or install it
          +-- InstallFailed        unpacking or installing the dependencies failed

`remember` says whether the version goes into failed.json (never tried again).
"""

from __future__ import annotations

from firmware.errors import AgentError


class UpdateError(AgentError):
    hint = "the device keeps running its current version; see the report's reason"
    remember = True

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UpdatesDisabled(UpdateError):
    hint = "set [update] public_key and an https base_url in the agent config"
    remember = False


class OfferRefused(UpdateError):
    hint = "only offers signed with the fleet's key, unexpired, from the latest rollout and for a newer version"
    remember = False


class DownloadFailed(UpdateError):
    def __init__(self, reason: str, *, retry_after_s: float | None = None, permanent: bool = False,
                 remember: bool = True):
        super().__init__(reason)
        self.retry_after_s = retry_after_s
        self.permanent = permanent
        self.remember = remember


class VerificationFailed(UpdateError):
    hint = "the archive was refused and deleted: check the release was signed with the fleet's key"


class NoSpace(UpdateError):
    hint = "free space on the device (old spools, logs) or build a smaller release"


class InstallFailed(UpdateError):
    pass
