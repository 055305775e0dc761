"""Reading small text files the kernel exposes (1-wire, IIO, power_supply), errors mapped."""

from __future__ import annotations

import errno
from pathlib import Path

from firmware.errors import ChecksumError, SensorAbsent, SensorBusError


def read_text(sensor: str, path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise SensorAbsent(sensor, f"{path} does not exist") from None
    except OSError as exc:
        # The kernel's dht11/IIO driver answers EIO when the frame's checksum or timing fails.
        if exc.errno == errno.EIO:
            raise ChecksumError(sensor, f"{path}: I/O error (bad frame)") from None
        raise SensorBusError(sensor, f"{path}: {exc.strerror or exc}") from None
