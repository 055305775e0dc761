"""Bosch BME280 temperature/humidity (and pressure) over I2C, with the datasheet's
floating-point compensation (BST-BME280-DS002, section 8.1)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firmware.drivers.base import Climate
from firmware.drivers.i2c import I2CDevice
from firmware.errors import ImplausibleValue, SensorAbsent

CHIP_ID = 0x60
_SKIPPED_T = 0x80000
_SKIPPED_H = 0x8000


@dataclass(frozen=True)
class Calibration:
    t1: int
    t2: int
    t3: int
    h1: int
    h2: int
    h3: int
    h4: int
    h5: int
    h6: int


def parse_calibration(block_88: bytes, h1: int, block_e1: bytes) -> Calibration:
    """Registers 0x88..0x8D (T), 0xA1 (H1) and 0xE1..0xE7 (H2..H6)."""
    t1, t2, t3 = struct.unpack_from("<Hhh", block_88)
    h2, h3, e4, e5, e6, h6 = struct.unpack_from("<hBbBbb", block_e1)
    h4 = (e4 << 4) | (e5 & 0x0F)
    h5 = (e6 << 4) | (e5 >> 4)
    return Calibration(t1, t2, t3, h1, h2, h3, h4, h5, h6)


def compensate_temperature(adc_t: int, cal: Calibration) -> tuple[float, float]:
    """(temperature degC, t_fine) from the raw 20-bit value."""
    var1 = (adc_t / 16384.0 - cal.t1 / 1024.0) * cal.t2
    var2 = (adc_t / 131072.0 - cal.t1 / 8192.0) ** 2 * cal.t3
    t_fine = var1 + var2
    return t_fine / 5120.0, t_fine


def compensate_humidity(adc_h: int, t_fine: float, cal: Calibration) -> float:
    h = t_fine - 76800.0
    h = (adc_h - (cal.h4 * 64.0 + cal.h5 / 16384.0 * h)) * (
        cal.h2 / 65536.0 * (1.0 + cal.h6 / 67108864.0 * h * (1.0 + cal.h3 / 67108864.0 * h)))
    h *= 1.0 - cal.h1 * h / 524288.0
    return min(max(h, 0.0), 100.0)


def decode_measurement(data: bytes, cal: Calibration, sensor: str = "bme280") -> Climate:
    """Registers 0xF7..0xFE (press, temp, hum) -> Climate."""
    adc_t = (data[3] << 12) | (data[4] << 4) | (data[5] >> 4)
    adc_h = (data[6] << 8) | data[7]
    if adc_t == _SKIPPED_T or adc_h == _SKIPPED_H:
        raise ImplausibleValue(sensor, "measurement skipped (sensor not configured or still in reset)")
    temp_c, t_fine = compensate_temperature(adc_t, cal)
    return Climate(round(temp_c, 2), round(compensate_humidity(adc_h, t_fine, cal), 2))


class BME280Sensor:
    def __init__(self, name: str, bus: int = 1, address: int = 0x76):
        self.name = name
        self._device = I2CDevice(name, bus, address)
        self._cal: Calibration | None = None

    def _calibration(self) -> Calibration:
        if self._cal is None:
            chip = self._device.read_registers(0xD0, 1)[0]
            if chip != CHIP_ID:
                raise SensorAbsent(self.name, f"chip id 0x{chip:02x} is not a BME280 (0x60); "
                                              "a BMP280 has no humidity")
            self._cal = parse_calibration(self._device.read_registers(0x88, 6),
                                          self._device.read_registers(0xA1, 1)[0],
                                          self._device.read_registers(0xE1, 7))
        return self._cal

    def read(self) -> Climate:
        cal = self._calibration()
        self._device.transfer(b"\xf2\x01", 0, 0.0)  # humidity oversampling x1
        self._device.transfer(b"\xf4\x25", 0, 0.012)  # T x1, P x1, forced mode; wait for it
        return decode_measurement(self._device.read_registers(0xF7, 8), cal, self.name)

    def close(self) -> None:
        self._device.close()
