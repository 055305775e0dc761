"""Elsys ERS / ERS Lite (temperature and humidity, and what else an ERS model carries): a frog codec.

Follows Elsys's payload structure as their own reference decoder implements it (elsys.se,
"Elsys payload"; the same decoder is vendor/elsys/elsys.js in TheThingsNetwork/lorawan-devices):
a run of [type][value], big-endian, each type's value length fixed. Types that are not ours
(light, motion, CO2, ...) are skipped by their documented lengths; an unknown type is an error,
since its length, and so the rest of the frame, is unknown.
"""

from __future__ import annotations

from lorawan.codecs.base import DecodedUplink, Kind, Measurement, int16_be, need, uint16_be
from lorawan.codecs.mapping import FieldMapping, FieldRule
from lorawan.errors import CodecError

TEMP, RH, VDD = 0x01, 0x02, 0x07
# type -> value length in bytes, from the reference decoder's type table.
LENGTHS = {
    0x01: 2,   # temperature, int16, 0.1 °C
    0x02: 1,   # humidity, uint8, %
    0x03: 3,   # acceleration x, y, z
    0x04: 2,   # light, lux
    0x05: 1,   # motion (PIR count)
    0x06: 2,   # CO2, ppm
    0x07: 2,   # VDD (battery), mV
    0x08: 2,   # analog input 1, mV
    0x09: 6,   # GPS
    0x0A: 2,   # pulse 1
    0x0B: 4,   # pulse 1 absolute
    0x0C: 2,   # external temperature 1
    0x0D: 1,   # external digital
    0x0E: 2,   # external distance, mm
    0x0F: 1,   # acceleration motion
    0x10: 4,   # IR temperature internal + external
    0x11: 1,   # occupancy
    0x12: 1,   # water leak
    0x13: 65,  # Grid-EYE
    0x14: 4,   # pressure
    0x15: 2,   # sound peak/average
    0x16: 2,   # pulse 2
    0x17: 4,   # pulse 2 absolute
    0x18: 2,   # analog input 2
    0x19: 2,   # external temperature 2
    0x1A: 1,   # external digital 2
    0x1B: 4,   # external analog, µV
    0x1C: 2,   # TVOC, ppb
    0x3D: 4,   # debug
}


class ElsysErs:
    name = "elsys-ers"
    kind: Kind = "frog"
    source = ("Elsys, \"Elsys payload\" reference decoder (https://www.elsys.se/en/elsys-payload/), as published "
              "in TheThingsNetwork/lorawan-devices vendor/elsys/elsys.js with the ers-codec.yaml and "
              "ers-lite-codec.yaml examples")
    vendor_fields: FieldMapping | None = FieldMapping(
        kind="frog",
        fields={"air_temp_c": FieldRule("temperature"), "rh_pct": FieldRule("humidity")},
        battery_v=FieldRule("vdd", scale=0.001),
    )

    def decode(self, f_port: int, data: bytes) -> DecodedUplink:
        # The data port is a device setting, so any application port is accepted (0 is MAC only).
        if not 1 <= f_port <= 223:
            raise CodecError(f"{self.name}: unexpected fPort {f_port} (expects an application port 1..223)")
        if not data:
            raise CodecError("empty payload")
        values: dict[str, float] = {}
        battery: float | None = None
        offset = 0
        while offset < len(data):
            kind = data[offset]
            length = LENGTHS.get(kind)
            if length is None:
                raise CodecError(f"unknown Elsys type 0x{kind:02x} at offset {offset}")
            value = need(data, offset + 1, length, f"type 0x{kind:02x}")
            if kind == TEMP:
                values["air_temp_c"] = int16_be(value) / 10
            elif kind == RH:
                values["rh_pct"] = float(value[0])
            elif kind == VDD:
                battery = uint16_be(value) / 1000
            offset += 1 + length
        if len(values) == 1:
            raise CodecError(f"frame has {next(iter(values))} without the other frog reading")
        return DecodedUplink([Measurement(values)] if values else [], battery_v=battery)

    def interval_downlink(self, seconds: int) -> tuple[int, bytes] | None:
        return None  # Elsys's settings downlink is not in the document followed (docs/lorawan-codecs.md)
