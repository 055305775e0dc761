"""Dragino LDDS75 (ultrasonic distance): a bin codec.

Follows the LDDS75 user manual (Dragino wiki, "LDDS75 - LoRaWAN Distance Detection Sensor User
Manual", uplink payload and downlink TDC) and Dragino's own decoder
(dragino/dragino-end-node-decoder LDDS75/LDDS75_Decoder_V1.1.4.js). FPort 2, 8 bytes, big-endian:

    0-1  battery, mV in the low 14 bits     4  interrupt flag (1: interrupt uplink)
    2-3  distance, mm                       5-6  DS18B20, int16, 0.1 °C
                                            7  sensor flag (1: ultrasonic sensor detected)
"""

from __future__ import annotations

from lorawan.codecs import _dragino
from lorawan.codecs.base import DecodedUplink, Kind, Measurement, check_port, need, uint16_be
from lorawan.codecs.mapping import FieldMapping, FieldRule
from lorawan.errors import CodecError

PORT = 2
LENGTH = 8
MIN_RANGE_MM = 280  # the manual's flat-object range is 280-7500 mm


class DraginoLdds75:
    name = "dragino-ldds75"
    kind: Kind = "bin"
    source = ("Dragino, LDDS75 LoRaWAN Distance Detection Sensor User Manual (http://wiki.dragino.com/xwiki/bin/view/"
              "Main/User%20Manual%20for%20LoRaWAN%20End%20Nodes/LDDS75%20-%20LoRaWAN%20Distance%20Detection%20Sensor"
              "%20User%20Manual/) and dragino/dragino-end-node-decoder LDDS75/LDDS75_Decoder_V1.1.4.js")
    # Dragino's decoder gives Distance in mm (a number), Bat in V, TempC_DS18B20 as a string ("26.10"),
    # which the mapping reads as a numeric string.
    vendor_fields: FieldMapping | None = FieldMapping(
        kind="bin",
        fields={"distance_mm": FieldRule("Distance"), "temp_c": FieldRule("TempC_DS18B20")},
        battery_v=FieldRule("Bat"),
    )

    def decode(self, f_port: int, data: bytes) -> DecodedUplink:
        check_port(self.name, f_port, (PORT,))
        frame = need(data, 0, LENGTH, "the LDDS75 frame")
        if len(data) != LENGTH:
            raise CodecError(f"LDDS75 frame is {LENGTH} bytes, got {len(data)}")
        if frame[7] == 0:
            raise CodecError("ultrasonic sensor not detected (sensor flag 0)")
        distance = uint16_be(frame[2:4])
        if distance == 0:
            raise CodecError("ultrasonic sensor not detected (distance 0x0000)")
        notes: list[str] = []
        if distance < MIN_RANGE_MM:
            notes.append(f"distance {distance} mm is below the sensor's {MIN_RANGE_MM} mm minimum range")
        if frame[4] == 1:
            notes.append("interrupt uplink")
        values: dict[str, float] = {"distance_mm": float(distance)}
        temp = _dragino.ds18b20_c(frame[5:7])
        if temp is None:
            notes.append("DS18B20 probe not connected")
        else:
            values["temp_c"] = temp
        return DecodedUplink(
            [Measurement(values)], battery_v=(uint16_be(frame[0:2]) & 0x3FFF) / 1000, notes=tuple(notes),
        )

    def interval_downlink(self, seconds: int) -> tuple[int, bytes] | None:
        return _dragino.tdc_downlink(self.name, seconds)
