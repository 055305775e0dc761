"""Names a LoRaWAN device is known by in the registry: its DevEUI and its codec.

A DevEUI is 64 bits, written as 16 hex digits; vendors print it with dashes, colons or
spaces, in either case. The registry keeps the 16 lower-case digits. A codec is one of ours
(`lorawan.codecs`) or `map:<profile>`, a council's field mapping of the network server's
decoded JSON (`lorawan.codecs.mapping`).
"""

from __future__ import annotations

import re

DEV_EUI = re.compile(r"^[0-9a-f]{16}$")
MAP_PREFIX = "map:"
PROFILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,127}$")


def normalise_dev_eui(text: str) -> str | None:
    """The 16 lower-case hex digits of a DevEUI as printed on a label; None if it is not one."""
    digits = re.sub(r"[\s:-]", "", text).lower()
    return digits if DEV_EUI.match(digits) else None


def mapping_profile(codec: str) -> str | None:
    """The profile a `map:<profile>` codec names; None for a built-in codec."""
    return codec[len(MAP_PREFIX):] if codec.startswith(MAP_PREFIX) else None
