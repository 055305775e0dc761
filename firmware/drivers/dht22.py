"""DHT22 (AM2302) temperature/humidity.

The Pi reads it through the kernel's `dht11` overlay (`dtoverlay=dht11,gpiopin=4`, which
handles the DHT22 too): IIO files in millidegrees and milli-percent. The sensor is flaky,
so a read is retried a few times, 2 s apart (it cannot sample faster); a failed frame is a
ChecksumError, never a value. `decode_frame` is the 40-bit protocol itself, for bit-banged
readers and tests.
"""

from __future__ import annotations

import time
from pathlib import Path

from firmware.drivers.base import Climate
from firmware.drivers.sysfs import read_text
from firmware.errors import ChecksumError, ImplausibleValue, SensorError

IIO_ROOT = Path("/sys/bus/iio/devices")


def decode_frame(frame: bytes, sensor: str = "dht22") -> Climate:
    """Five bytes: RH high, RH low, T high (bit 7 = sign), T low, checksum (sum of the four)."""
    if len(frame) != 5:
        raise ChecksumError(sensor, f"expected 5 bytes, got {len(frame)}")
    if sum(frame[:4]) & 0xFF != frame[4]:
        raise ChecksumError(sensor, f"checksum 0x{frame[4]:02x} != 0x{sum(frame[:4]) & 0xFF:02x}")
    rh = ((frame[0] << 8) | frame[1]) / 10.0
    temp = (((frame[2] & 0x7F) << 8) | frame[3]) / 10.0
    if frame[2] & 0x80:
        temp = -temp
    if not (0.0 <= rh <= 100.0 and -40.0 <= temp <= 80.0):
        raise ImplausibleValue(sensor, f"out of the DHT22's range: {temp} degC, {rh} %")
    return Climate(temp, rh)


class DHT22Sensor:
    def __init__(self, name: str, iio_device: str = "iio:device0", attempts: int = 3,
                 retry_wait_s: float = 2.1):
        self.name = name
        self.folder = IIO_ROOT / iio_device
        self.attempts = attempts
        self.retry_wait_s = retry_wait_s

    def _milli(self, file: str) -> float:
        text = read_text(self.name, self.folder / file)
        try:
            return int(text) / 1000.0
        except ValueError:
            raise ChecksumError(self.name, f"{file} is not a number: {text.strip()[:20]!r}") from None

    def _read_once(self) -> Climate:
        temp = self._milli("in_temp_input")
        rh = self._milli("in_humidityrelative_input")
        if not (0.0 <= rh <= 100.0 and -40.0 <= temp <= 80.0):
            raise ImplausibleValue(self.name, f"out of the DHT22's range: {temp} degC, {rh} %")
        return Climate(round(temp, 2), round(rh, 2))

    def read(self) -> Climate:
        last: SensorError | None = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.retry_wait_s)
            try:
                return self._read_once()
            except (ChecksumError, ImplausibleValue) as exc:  # flaky frame: try again
                last = exc
        assert last is not None
        raise last

    def close(self) -> None:
        pass
