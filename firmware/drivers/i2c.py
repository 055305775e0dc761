"""A thin I2C adapter over smbus2 (imported on first use) that maps OS errors to SensorErrors."""

from __future__ import annotations

import errno
import time
from typing import Any

from firmware.drivers.lazy import hardware_module
from firmware.errors import SensorAbsent, SensorBusError

# errno values an absent or unpowered device gives: no ACK (EREMOTEIO), EIO, ENXIO.
_NOT_THERE = {errno.EREMOTEIO, errno.ENXIO}


class I2CDevice:
    """One device on one bus: write a command, wait, read bytes."""

    def __init__(self, name: str, bus: int, address: int):
        self.name = name
        self.bus_number = bus
        self.address = address
        self._bus: Any = None

    def _open(self) -> Any:
        if self._bus is None:
            smbus2 = hardware_module("smbus2", self.name)
            try:
                self._bus = smbus2.SMBus(self.bus_number)
            except OSError as exc:
                raise SensorAbsent(self.name, f"cannot open /dev/i2c-{self.bus_number}: {exc.strerror}"
                                   " (is I2C enabled in raspi-config?)") from None
        return self._bus

    def transfer(self, command: bytes, read_len: int, wait_s: float) -> bytes:
        bus = self._open()
        i2c_msg = hardware_module("smbus2", self.name).i2c_msg
        try:
            if command:
                bus.i2c_rdwr(i2c_msg.write(self.address, list(command)))
            time.sleep(wait_s)
            if not read_len:
                return b""
            msg = i2c_msg.read(self.address, read_len)
            bus.i2c_rdwr(msg)
            return bytes(msg)
        except OSError as exc:
            self.close()
            where = f"0x{self.address:02x} on bus {self.bus_number}"
            if exc.errno in _NOT_THERE:
                raise SensorAbsent(self.name, f"no answer at {where}") from None
            raise SensorBusError(self.name, f"I2C error at {where}: {exc.strerror or exc}") from None

    def read_registers(self, register: int, length: int) -> bytes:
        return self.transfer(bytes([register]), length, 0.0)

    def close(self) -> None:
        if self._bus is not None:
            bus, self._bus = self._bus, None
            bus.close()
