"""Dragino LSN50 / LSN50-V2 with a DS18B20 probe on the road surface: a road codec.

Follows the LSN50 & LSN50-V2 user manual (Dragino wiki, "LSN50 & LSN50-V2 - LoRaWAN Sensor Node
User Manual", MOD=1 default mode) and Dragino's decoder as published in
TheThingsNetwork/lorawan-devices vendor/dragino/lsn50-v2.js. FPort 2, 11 bytes, big-endian:

    0-1  battery, mV                      6  flags: bit 7 PA8 level, bits 6-2 working mode (0 = MOD1),
    2-3  DS18B20, int16, 0.1 °C (7FFF =     bit 1 PA12 digital input, bit 0 interrupt uplink
         no probe)                        7-8  I²C (SHT20/SHT31) temperature, int16, 0.1 °C
    4-5  ADC on PA0, mV                   9-10 I²C humidity, uint16, 0.1 %RH (0 = a BH1750 lux reading
                                               in 7-8 instead)
The probe taped to the road is surface_temp_c; an SHT on the I²C bus measures the air.
"""

from __future__ import annotations

from lorawan.codecs import _dragino
from lorawan.codecs.base import DecodedUplink, Kind, Measurement, check_port, int16_be, need, uint16_be
from lorawan.codecs.mapping import FieldMapping, FieldRule
from lorawan.errors import CodecError

PORT = 2
LENGTH = 11  # MOD1
_NO_I2C = {0x7FFF, 0xFFFF}


class DraginoLsn50:
    name = "dragino-lsn50"
    kind: Kind = "road"
    source = ("Dragino, LSN50 & LSN50-V2 LoRaWAN Sensor Node User Manual, MOD=1 (https://wiki.dragino.com/xwiki/bin/"
              "view/Main/User%20Manual%20for%20LoRaWAN%20End%20Nodes/LSN50%20%26%20LSN50-V2%20-%20LoRaWAN%20Sensor"
              "%20Node%20User%20Manual/) and TheThingsNetwork/lorawan-devices vendor/dragino/lsn50-v2.js")
    # The decoder's TempC_SHT/Hum_SHT read "NULL" (a string) when the I²C sensor fails, which a mapping
    # would reject, so only the probe and the battery are mapped; TempC1 "NULL" is an error anyway.
    vendor_fields: FieldMapping | None = FieldMapping(kind="road", fields={"surface_temp_c": FieldRule("TempC1")},
                                 battery_v=FieldRule("BatV"))

    def decode(self, f_port: int, data: bytes) -> DecodedUplink:
        check_port(self.name, f_port, (PORT,))
        flags = need(data, 0, 7, "battery, DS18B20, ADC and flags")[6]
        mode = (flags & 0x7C) >> 2
        if mode != 0:
            raise CodecError(f"working mode MOD={mode + 1} is not decoded (only MOD=1, the default)")
        frame = need(data, 0, LENGTH, "the MOD=1 frame")
        if len(data) != LENGTH:
            raise CodecError(f"MOD=1 frame is {LENGTH} bytes, got {len(data)}")
        surface = _dragino.ds18b20_c(frame[2:4])
        if surface is None:
            raise CodecError("DS18B20 probe not connected (0x7FFF)")
        values: dict[str, float] = {"surface_temp_c": surface}
        notes: list[str] = ["interrupt uplink"] if flags & 0x01 else []
        air_raw, rh_raw = uint16_be(frame[7:9]), uint16_be(frame[9:11])
        if rh_raw == 0:
            pass  # no SHT: either nothing on the bus or a BH1750's lux in 7-8, not a reading of ours
        elif air_raw in _NO_I2C or rh_raw == 0xFFFF:
            notes.append("I2C temperature/humidity sensor did not answer")
        else:
            values["air_temp_c"] = int16_be(frame[7:9]) / 10
            values["rh_pct"] = rh_raw / 10
        return DecodedUplink([Measurement(values)], battery_v=uint16_be(frame[0:2]) / 1000, notes=tuple(notes))

    def interval_downlink(self, seconds: int) -> tuple[int, bytes] | None:
        return _dragino.tdc_downlink(self.name, seconds)
