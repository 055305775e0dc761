"""NMEA 0183 GPS over a serial port (the gritter's position).

Pure part: checksum (XOR of the characters between `$` and `*`), and RMC/GGA sentences
to a Position, or NoFix when the receiver says it has none (RMC status V, GGA quality 0).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from firmware.drivers.base import Position
from firmware.drivers.lazy import hardware_module
from firmware.errors import ChecksumError, NoFix, SensorAbsent, SensorBusError


def nmea_checksum(body: str) -> int:
    value = 0
    for char in body:
        value ^= ord(char)
    return value


def split_sentence(line: str, sensor: str = "gps") -> list[str]:
    """`$GPRMC,...*6A` -> its fields (talker+type first); ChecksumError when it does not add up."""
    line = line.strip()
    if not line.startswith("$") or "*" not in line:
        raise ChecksumError(sensor, f"not an NMEA sentence: {line[:40]!r}")
    body, _, given = line[1:].rpartition("*")
    try:
        expected = int(given[:2], 16)
    except ValueError:
        raise ChecksumError(sensor, f"bad checksum field {given!r}") from None
    if nmea_checksum(body) != expected:
        raise ChecksumError(sensor, f"NMEA checksum {given[:2]} != {nmea_checksum(body):02X}")
    return body.split(",")


def _coordinate(value: str, hemisphere: str, degree_digits: int) -> float:
    degrees = int(value[:degree_digits])
    minutes = float(value[degree_digits:])
    sign = -1.0 if hemisphere in ("S", "W") else 1.0
    return sign * round(degrees + minutes / 60.0, 7)


def parse_position(line: str, sensor: str = "gps") -> Position | None:
    """A Position from RMC or GGA; None for other sentence types; NoFix when there is none."""
    fields = split_sentence(line, sensor)
    kind = fields[0][2:]
    try:
        if kind == "RMC":
            if fields[2] != "A":
                raise NoFix(sensor, "receiver reports no fix (RMC status V)")
            utc = None
            if fields[1] and fields[9]:
                utc = datetime.strptime(fields[9] + fields[1][:6], "%d%m%y%H%M%S").replace(tzinfo=UTC)
            return Position(_coordinate(fields[3], fields[4], 2), _coordinate(fields[5], fields[6], 3), utc)
        if kind == "GGA":
            if fields[6] in ("", "0"):
                raise NoFix(sensor, "receiver reports no fix (GGA quality 0)")
            return Position(_coordinate(fields[2], fields[3], 2), _coordinate(fields[4], fields[5], 3))
    except (IndexError, ValueError):
        raise ChecksumError(sensor, f"malformed {kind} sentence") from None
    return None


class SerialGPS:
    """Reads sentences until a position (or `timeout_s` passes, then NoFix)."""

    def __init__(self, name: str, port: str = "/dev/serial0", baud: int = 9600, timeout_s: float = 3.0):
        self.name = name
        self.port = port
        self.baud = baud
        self.timeout_s = timeout_s
        self._serial: Any = None

    def _open(self) -> Any:
        if self._serial is None:
            serial = hardware_module("serial", self.name)
            try:
                self._serial = serial.Serial(self.port, self.baud, timeout=1.0)
            except (OSError, serial.SerialException) as exc:
                raise SensorAbsent(self.name, f"cannot open {self.port}: {exc}") from None
        return self._serial

    def read(self) -> Position:
        port = self._open()
        deadline = time.monotonic() + self.timeout_s
        last_fault: Exception | None = None
        heard = False
        while time.monotonic() < deadline:
            try:
                raw = port.readline()
            except OSError as exc:
                self.close()
                raise SensorBusError(self.name, f"serial read failed: {exc}") from None
            if not raw:
                continue
            heard = True
            try:
                position = parse_position(raw.decode("ascii", "replace"), self.name)
            except (NoFix, ChecksumError) as exc:
                last_fault = exc
                continue
            if position is not None:
                return position
        if not heard:
            raise SensorAbsent(self.name, f"no NMEA sentences on {self.port} in {self.timeout_s:g} s")
        if isinstance(last_fault, ChecksumError):
            raise last_fault
        raise NoFix(self.name, "no position fix yet")

    def close(self) -> None:
        if self._serial is not None:
            port, self._serial = self._serial, None
            port.close()
