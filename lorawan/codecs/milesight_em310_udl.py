"""Milesight EM310-UDL (ultrasonic distance): a bin codec.

Follows Milesight-IoT/SensorDecoders EM_Series/EM300_Series/EM310-UDL (README payload table,
EM310-UDL_Decoder.js, EM310-UDL_Encoder.js). The position channel is a tilt *flag*, not an
angle: it becomes a note, never tilt_deg.
"""

from __future__ import annotations

from lorawan.codecs import _milesight
from lorawan.codecs.base import DecodedUplink, Kind, Measurement, check_port
from lorawan.codecs.mapping import FieldMapping, FieldRule

_REPLIES = {0x02: 2, 0x03: 2, 0x06: 9, 0x10: 1}  # the decoder's handle_downlink_response
KNOWN = {
    (0x01, 0x75): 1,   # battery, uint8 %
    (0x03, 0x82): 2,   # distance, uint16 LE mm
    (0x04, 0x00): 1,   # position: 0 normal, 1 tilt
    **{(ch, t): n for ch in (0xFE, 0xFF) for t, n in _REPLIES.items()},
    **_milesight.DEVICE_INFO,
}


class MilesightEm310Udl:
    name = "milesight-em310-udl"
    kind: Kind = "bin"
    source = ("Milesight-IoT/SensorDecoders, EM_Series/EM300_Series/EM310-UDL (README payload definition, "
              "EM310-UDL_Decoder.js, EM310-UDL_Encoder.js): https://github.com/Milesight-IoT/SensorDecoders")
    vendor_fields: FieldMapping | None = FieldMapping(
        kind="bin", fields={"distance_mm": FieldRule("distance")}, battery_pct=FieldRule("battery"),
    )

    def decode(self, f_port: int, data: bytes) -> DecodedUplink:
        check_port(self.name, f_port, (_milesight.PORT,))
        values: dict[str, float] = {}
        battery: float | None = None
        notes: list[str] = []
        for channel, kind, value in _milesight.channels(data, KNOWN):
            if (channel, kind) == (0x01, 0x75):
                battery = float(value[0])
            elif (channel, kind) == (0x03, 0x82):
                values["distance_mm"] = float(int.from_bytes(value, "little"))
            elif (channel, kind) == (0x04, 0x00):
                position = {0: "normal", 1: "tilt"}.get(value[0], f"unknown ({value[0]})")
                if position != "normal":
                    notes.append(f"position: {position}")
            elif channel in (0xFE, 0xFF) and kind == 0x03:
                notes.append(f"report interval is {int.from_bytes(value, 'little')} s")
        return DecodedUplink([Measurement(values)] if values else [], battery_pct=battery, notes=tuple(notes))

    def interval_downlink(self, seconds: int) -> tuple[int, bytes] | None:
        return _milesight.interval_downlink(self.name, seconds, 0xFFFF)  # encoder: >= 1, a uint16
