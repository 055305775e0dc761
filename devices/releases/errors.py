"""The releases package's exceptions.

    DeviceError (devices.errors)
     +-- ReleaseError              anything about releases and rollouts the platform refuses
          +-- SigningKeyError      a key file is missing, unreadable or would be overwritten
          +-- BuildError           the agent cannot be packaged (missing module, pip failed)
          +-- ReleaseRejected      a release file that does not verify (checksum, signature)
          +-- UnknownRelease       no such release version (or rollout)
          +-- RolloutError         a rollout cannot be created or changed in this state
"""

from __future__ import annotations

from devices.errors import DeviceError


class ReleaseError(DeviceError):
    pass


class SigningKeyError(ReleaseError):
    hint = "`cityops release keygen --out DIR` makes a key pair; keep the private key off the servers"


class BuildError(ReleaseError):
    hint = "run from a checkout of the platform, or give --source; --no-deps skips the dependency wheels"


class ReleaseRejected(ReleaseError):
    hint = "rebuild the release with `cityops release build` and the fleet's private key"


class UnknownRelease(ReleaseError):
    hint = "`cityops release status` lists the published releases and rollouts"


class RolloutError(ReleaseError):
    hint = "`cityops release status` shows the rollouts and their states"
