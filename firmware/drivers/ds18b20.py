"""DS18B20 road-surface probe over the kernel's 1-wire sysfs interface.

`/sys/bus/w1/devices/28-*/w1_slave` holds two lines: the scratchpad with `crc=xx YES`
(or `NO` when the CRC failed), then the scratchpad again with `t=` in millidegrees.
85000 is the power-on value (no conversion happened) and is never a temperature.
"""

from __future__ import annotations

import re
from pathlib import Path

from firmware.drivers.base import Temperature
from firmware.drivers.sysfs import read_text
from firmware.errors import ChecksumError, ImplausibleValue, SensorAbsent

W1_ROOT = Path("/sys/bus/w1/devices")
_T_FIELD = re.compile(r"t=(-?\d+)\s*$")
POWER_ON_RESET_MILLI_C = 85_000


def parse_w1_slave(text: str, sensor: str = "ds18b20") -> Temperature:
    lines = text.strip().splitlines()
    if len(lines) != 2:
        raise ChecksumError(sensor, f"expected 2 lines from w1_slave, got {len(lines)}")
    if not lines[0].rstrip().endswith("YES"):
        raise ChecksumError(sensor, "1-wire CRC check failed (first line does not end YES)")
    match = _T_FIELD.search(lines[1])
    if match is None:
        raise ChecksumError(sensor, "no t= field on the second line")
    milli = int(match.group(1))
    if milli == POWER_ON_RESET_MILLI_C:
        raise ImplausibleValue(sensor, "85 degC power-on value: the conversion did not run (power?)")
    if not -55_000 <= milli <= 125_000:
        raise ImplausibleValue(sensor, f"{milli / 1000:g} degC is outside the DS18B20's range")
    return Temperature(milli / 1000.0)


def find_probe(root: Path = W1_ROOT) -> str | None:
    found = sorted(p.name for p in root.glob("28-*"))
    return found[0] if found else None


class DS18B20Sensor:
    def __init__(self, name: str, probe_id: str | None = None, root: Path = W1_ROOT):
        self.name = name
        self.probe_id = probe_id
        self.root = root

    def read(self) -> Temperature:
        probe = self.probe_id or find_probe(self.root)
        if probe is None:
            raise SensorAbsent(self.name, f"no 1-wire probe (28-*) under {self.root}; "
                                          "is dtoverlay=w1-gpio set?")
        return parse_w1_slave(read_text(self.name, self.root / probe / "w1_slave"), self.name)

    def close(self) -> None:
        pass
