"""The `[update]` table of the agent config: where versions live, the fleet's public key,
where releases are downloaded from, and the launcher's health and crash-loop limits."""

from __future__ import annotations

from typing import Annotated

import msgspec


class UpdateConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    root: str = "/opt/cityops-agent"
    # base64 of the raw 32-byte Ed25519 public key (`cityops release keygen` prints it);
    # without it the device refuses every update (and says so in its report)
    public_key: str | None = None
    # the platform's API as this device reaches it: releases come from <base_url>/releases/...,
    # never from a URL in an offer, and the device's secret goes to this origin only.
    # https; without it (or with plain http) every update is refused and reported
    base_url: str | None = None
    # the CA certificate (PEM) that base_url's certificate must chain to; unset: [mqtt] ca_file,
    # and without that the system's CAs (a council's private CA from `cityops pki` needs this)
    ca_file: str | None = None
    # demo and tests only: accept an http:// base_url on this machine (127.0.0.1, ::1, localhost)
    allow_http: bool = False
    # the new version must publish (a PUBACK for a reading) within this long, or it is rolled back
    health_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    # this many exits within the window is a crash loop: roll back to the previous version
    crash_loop_restarts: Annotated[int, msgspec.Meta(ge=1)] = 3
    crash_loop_window_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    restart_delay_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    # free space kept on top of what a release needs
    reserve_mb: Annotated[float, msgspec.Meta(ge=0)] = 20.0
