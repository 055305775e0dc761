"""Milesight EM300-TH (temperature and humidity): a frog codec.

Follows Milesight-IoT/SensorDecoders EM_Series/EM300_Series/EM300-TH (README payload table,
EM300-TH_Decoder.js, EM300-TH_Encoder.js). docs/lorawan-codecs.md has the layout.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from lorawan.codecs import _milesight
from lorawan.codecs.base import DecodedUplink, Kind, Measurement, check_port
from lorawan.codecs.mapping import FieldMapping, FieldRule
from lorawan.errors import CodecError

# Replies to the downlinks the encoder defines, channel 0xFE or 0xFF (the decoder's handle_downlink_response).
_REPLIES = {0x02: 2, 0x03: 2, 0x06: 9, 0x10: 1, 0x27: 1, 0x28: 1, 0x68: 1, 0x69: 1, 0x6A: 3, 0x6D: 1, 0x79: 6,
            0xEA: 3}
KNOWN = {
    (0x01, 0x75): 1,   # battery, uint8 %
    (0x03, 0x67): 2,   # temperature, int16 LE, 0.1 °C
    (0x04, 0x68): 1,   # humidity, uint8, 0.5 %RH
    (0x20, 0xCE): 8,   # history: uint32 LE unix time, int16 LE 0.1 °C, uint8 0.5 %RH, reserved
    **{(ch, t): n for ch in (0xFE, 0xFF) for t, n in _REPLIES.items()},
    **_milesight.DEVICE_INFO,
}


class MilesightEm300Th:
    name = "milesight-em300-th"
    kind: Kind = "frog"
    source = ("Milesight-IoT/SensorDecoders, EM_Series/EM300_Series/EM300-TH (README payload definition, "
              "EM300-TH_Decoder.js, EM300-TH_Encoder.js): https://github.com/Milesight-IoT/SensorDecoders")
    vendor_fields: FieldMapping | None = FieldMapping(
        kind="frog",
        fields={"air_temp_c": FieldRule("temperature"), "rh_pct": FieldRule("humidity")},
        battery_pct=FieldRule("battery"),
    )

    def decode(self, f_port: int, data: bytes) -> DecodedUplink:
        check_port(self.name, f_port, (_milesight.PORT,))
        now: dict[str, float] = {}
        history: list[Measurement] = []
        battery: float | None = None
        notes: list[str] = []
        for channel, kind, value in _milesight.channels(data, KNOWN):
            if (channel, kind) == (0x01, 0x75):
                battery = float(value[0])
            elif (channel, kind) == (0x03, 0x67):
                now["air_temp_c"] = struct.unpack("<h", value)[0] / 10
            elif (channel, kind) == (0x04, 0x68):
                now["rh_pct"] = value[0] / 2
            elif (channel, kind) == (0x20, 0xCE):
                ts, temp, rh = struct.unpack("<IhB", value[:7])
                history.append(Measurement({"air_temp_c": temp / 10, "rh_pct": rh / 2},
                                           ts=datetime.fromtimestamp(ts, UTC)))
            elif channel in (0xFE, 0xFF) and kind == 0x03:
                notes.append(f"report interval is {int.from_bytes(value, 'little')} s")
        if len(now) == 1:
            raise CodecError(f"frame has {next(iter(now))} without the other frog reading")
        measurements = ([Measurement(now)] if now else []) + history
        return DecodedUplink(measurements, battery_pct=battery, notes=tuple(notes))

    def interval_downlink(self, seconds: int) -> tuple[int, bytes] | None:
        return _milesight.interval_downlink(self.name, seconds, 64800)  # encoder: range [1, 64800]
