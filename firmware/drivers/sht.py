"""Sensirion SHT31 (SHT3x) and SHT4x temperature/humidity sensors over I2C.

Both answer a measurement command with six bytes: temperature MSB, LSB, CRC, humidity MSB,
LSB, CRC. The CRC is CRC-8, polynomial 0x31, initial value 0xFF (datasheet: 0xBEEF -> 0x92).
"""

from __future__ import annotations

from typing import Literal

from firmware.drivers.base import Climate
from firmware.drivers.i2c import I2CDevice
from firmware.errors import ChecksumError, ImplausibleValue

Family = Literal["sht3x", "sht4x"]
_COMMAND = {"sht3x": (b"\x24\x00", 0.02), "sht4x": (b"\xfd", 0.01)}  # high repeatability, no stretch


def sht_crc8(data: bytes) -> int:
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def decode_sht(raw: bytes, family: Family, sensor: str = "sht") -> Climate:
    """Six bytes from the sensor -> Climate; ChecksumError on a CRC mismatch."""
    if len(raw) != 6:
        raise ChecksumError(sensor, f"expected 6 bytes, got {len(raw)}")
    for word, crc, what in ((raw[0:2], raw[2], "temperature"), (raw[3:5], raw[5], "humidity")):
        if sht_crc8(word) != crc:
            raise ChecksumError(sensor, f"{what} CRC mismatch (got 0x{crc:02x}, "
                                        f"computed 0x{sht_crc8(word):02x})")
    t_ticks = int.from_bytes(raw[0:2], "big")
    rh_ticks = int.from_bytes(raw[3:5], "big")
    temp_c = -45.0 + 175.0 * t_ticks / 65535.0
    rh = 100.0 * rh_ticks / 65535.0 if family == "sht3x" else -6.0 + 125.0 * rh_ticks / 65535.0
    if raw[0:2] == b"\xff\xff" and raw[3:5] == b"\xff\xff":
        raise ImplausibleValue(sensor, "all-ones reading (sensor held in reset?)")
    return Climate(round(temp_c, 2), round(min(max(rh, 0.0), 100.0), 2))


class SHTSensor:
    def __init__(self, name: str, family: Family = "sht3x", bus: int = 1, address: int = 0x44):
        self.name = name
        self.family = family
        self._device = I2CDevice(name, bus, address)

    def read(self) -> Climate:
        command, wait_s = _COMMAND[self.family]
        return decode_sht(self._device.transfer(command, 6, wait_s), self.family, self.name)

    def close(self) -> None:
        self._device.close()
