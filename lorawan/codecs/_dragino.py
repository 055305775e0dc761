"""What the Dragino codecs share: the TDC downlink and the DS18B20 field."""

from __future__ import annotations

from lorawan.codecs.base import check_interval, int16_be

DOWNLINK_PORT = 1  # the manuals' downlinks are not tied to a port; 1 is what their examples use
TDC = 0x01  # "Set Transmit Interval Time": 0x01 + 3 bytes, seconds, big-endian
DS18B20_ABSENT = 0x7FFF  # the vendor decoders' "NULL": no DS18B20 on the bus


def tdc_downlink(name: str, seconds: int) -> tuple[int, bytes]:
    check_interval(name, seconds, 1, 0xFFFFFF)
    return DOWNLINK_PORT, bytes([TDC]) + seconds.to_bytes(3, "big")


def ds18b20_c(raw: bytes) -> float | None:
    """A DS18B20 temperature (int16 BE, 0.1 °C), None when the probe is absent."""
    if int.from_bytes(raw, "big") == DS18B20_ABSENT:
        return None
    return int16_be(raw) / 10
