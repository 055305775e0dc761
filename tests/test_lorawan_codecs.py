"""LoRaWAN device codecs and field mappings (lorawan/codecs): the vendors' own examples, run.

Every expectation names where it comes from. "SensorDecoders" is github.com/Milesight-IoT/SensorDecoders,
"lorawan-devices" is github.com/TheThingsNetwork/lorawan-devices, "dragino-decoder" is
github.com/dragino/dragino-end-node-decoder.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorawan.codecs import CODECS, DecodedUplink, Measurement, apply_mapping, codec, parse_mapping
from lorawan.codecs.mapping import FieldMapping, FieldRule
from lorawan.errors import CodecError, MappingError, UnknownCodec


def decode(name: str, f_port: int, hex_payload: str) -> DecodedUplink:
    return codec(name).decode(f_port, bytes.fromhex(hex_payload))


def only(uplink: DecodedUplink) -> dict[str, float]:
    assert len(uplink.measurements) == 1
    assert uplink.measurements[0].ts is None
    return uplink.measurements[0].values


# --- Milesight EM300-TH ---------------------------------------------------------------

def test_em300_th_readme_example() -> None:
    # SensorDecoders EM300-TH/README.md: 01755C 03673401 046865 -> battery 92, temperature 30.8, humidity 50.5
    uplink = decode("milesight-em300-th", 85, "01755C03673401046865")
    assert only(uplink) == {"air_temp_c": 30.8, "rh_pct": 50.5}
    assert uplink.battery_pct == 92 and uplink.battery_v is None


def test_em300_th_lorawan_devices_example() -> None:
    # lorawan-devices vendor/milesight-iot/em300-th-codec.yaml: battery 50, temperature 20.0, humidity 30.0.
    # (The YAML says fPort 1; the vendor decoder ignores the port. The user guide's port, 85, is used here.)
    uplink = decode("milesight-em300-th", 85, "017532" "0367C800" "04683C")
    assert only(uplink) == {"air_temp_c": 20.0, "rh_pct": 30.0}
    assert uplink.battery_pct == 50


def test_em300_th_history_entry_carries_the_device_timestamp() -> None:
    # SensorDecoders EM300-TH/README.md: 20CE9E74466310015D00 -> history
    # [{timestamp 1665561758, temperature 27.2, humidity 46.5}]
    uplink = decode("milesight-em300-th", 85, "20CE9E74466310015D00")
    [entry] = uplink.measurements
    assert entry.values == {"air_temp_c": 27.2, "rh_pct": 46.5}
    assert entry.ts == datetime.fromtimestamp(1665561758, UTC)


def test_em300_th_negative_and_out_of_range_temperatures_pass_through() -> None:
    # Payload definition: temperature int16 LE, 0.1 °C. 0xFF38 = -200 -> -20.0; 0x03E8 = 1000 -> 100.0 is
    # implausible but not a vendor error code, so the platform's plausibility check judges it later.
    assert only(decode("milesight-em300-th", 85, "036738FF046864"))["air_temp_c"] == -20.0
    assert only(decode("milesight-em300-th", 85, "0367E803046864")) == {"air_temp_c": 100.0, "rh_pct": 50.0}


def test_em300_th_device_information_frame_has_no_measurement() -> None:
    # SensorDecoders EM300-TH_Decoder.js attribute channels: FF0B device status, FF01 IPSO version,
    # FF16 serial number (8 bytes), FF09 hardware, FF0A firmware, FF0F LoRaWAN class.
    uplink = decode("milesight-em300-th", 85, "FF0BFF" "FF0101" "FF166136C19146980003" "FF090140" "FF0A0114" "FF0F00")
    assert uplink.measurements == []


def test_em300_th_rejects_unknown_channel_by_name() -> None:
    # Channel 0x05 0x99 is not in the EM300-TH payload definition, so its length is unknown.
    with pytest.raises(CodecError, match="channel 0x05 type 0x99"):
        decode("milesight-em300-th", 85, "0175640599AA")


def test_em300_th_rejects_wrong_port_truncation_and_half_a_reading() -> None:
    with pytest.raises(CodecError, match="fPort 2"):
        decode("milesight-em300-th", 2, "01755C03673401046865")
    with pytest.raises(CodecError, match="truncated"):  # temperature needs 2 bytes (payload definition)
        decode("milesight-em300-th", 85, "01755C036734")
    with pytest.raises(CodecError, match="truncated"):
        decode("milesight-em300-th", 85, "01")
    with pytest.raises(CodecError, match="without"):  # a frog reading needs both fields (platform rule)
        decode("milesight-em300-th", 85, "01755C03673401")
    with pytest.raises(CodecError, match="empty"):
        decode("milesight-em300-th", 85, "")


def test_em300_th_interval_downlink() -> None:
    # SensorDecoders EM300-TH_Encoder.js setReportInterval: ff 03 + uint16 LE seconds, range [1, 64800];
    # 600 s -> ff 03 58 02. Port 85 per the user guide.
    em300 = codec("milesight-em300-th")
    assert em300.interval_downlink(600) == (85, bytes.fromhex("ff035802"))
    assert em300.interval_downlink(64800) == (85, bytes.fromhex("ff0320fd"))
    for bad in (0, 64801):
        with pytest.raises(CodecError, match="interval"):
            em300.interval_downlink(bad)


# --- Milesight EM310-UDL --------------------------------------------------------------

def test_em310_udl_readme_example_tilt_is_a_note_not_an_angle() -> None:
    # SensorDecoders EM310-UDL/README.md (and lorawan-devices em310-udl-codec.yaml, fPort 85):
    # 01755C 03824408 040001 -> battery 92, distance 2116, position "tilt"
    uplink = decode("milesight-em310-udl", 85, "01755C03824408040001")
    assert only(uplink) == {"distance_mm": 2116.0}
    assert uplink.battery_pct == 92
    assert uplink.notes == ("position: tilt",)


def test_em310_udl_normal_position_adds_no_note() -> None:
    # README: position 0 = normal
    uplink = decode("milesight-em310-udl", 85, "01755C03824408040000")
    assert uplink.notes == ()


def test_em310_udl_errors_and_downlink() -> None:
    with pytest.raises(CodecError, match="fPort 1"):
        decode("milesight-em310-udl", 1, "01755C03824408040001")
    with pytest.raises(CodecError, match="truncated"):
        decode("milesight-em310-udl", 85, "01755C038244")
    with pytest.raises(CodecError, match="channel 0x03 type 0x67"):  # EM300's temperature is not an EM310 channel
        decode("milesight-em310-udl", 85, "03673401")
    # SensorDecoders EM310-UDL_Encoder.js setReportInterval: ff 03 + uint16 LE, >= 1
    assert codec("milesight-em310-udl").interval_downlink(600) == (85, bytes.fromhex("ff035802"))
    with pytest.raises(CodecError):
        codec("milesight-em310-udl").interval_downlink(0x10000)


# --- Elsys ERS ------------------------------------------------------------------------

def test_elsys_reference_example() -> None:
    # Elsys payload reference example 0100e202290400270506060308070d62 -> temperature 22.6, humidity 41,
    # light 39, motion 6, co2 776, vdd 3426 (its first ten bytes are lorawan-devices ers-codec.yaml's example).
    uplink = decode("elsys-ers", 5, "0100e202290400270506060308070d62")
    assert only(uplink) == {"air_temp_c": 22.6, "rh_pct": 41.0}
    assert uplink.battery_v == 3.426


def test_elsys_ers_lite_example_on_any_port() -> None:
    # lorawan-devices vendor/elsys/ers-lite-codec.yaml: fPort 1, [01 00 E2 02 29] -> 22.6, 41
    assert only(decode("elsys-ers", 1, "0100E20229")) == {"air_temp_c": 22.6, "rh_pct": 41.0}


def test_elsys_negative_temperature_and_skipped_types() -> None:
    # Payload structure: 0x01 int16 BE /10 (0xFF38 -> -20.0); 0x03 acceleration is 3 bytes, 0x13 Grid-EYE 65.
    assert only(decode("elsys-ers", 5, "01FF38" "0302FE40" "0232")) == {"air_temp_c": -20.0, "rh_pct": 50.0}
    grideye = "13" + "00" * 65
    assert only(decode("elsys-ers", 5, grideye + "0100E20229")) == {"air_temp_c": 22.6, "rh_pct": 41.0}


def test_elsys_errors() -> None:
    with pytest.raises(CodecError, match="type 0x20"):  # not a type of the reference decoder
        decode("elsys-ers", 5, "0100E2022920AA")
    with pytest.raises(CodecError, match="truncated"):
        decode("elsys-ers", 5, "0100")
    with pytest.raises(CodecError, match="fPort 0"):
        decode("elsys-ers", 0, "0100E20229")
    with pytest.raises(CodecError, match="without"):
        decode("elsys-ers", 5, "0100E2")
    # A frame with only the battery (VDD 0x0D62 = 3426 mV) is no measurement, not an error.
    uplink = decode("elsys-ers", 5, "070D62")
    assert uplink.measurements == [] and uplink.battery_v == 3.426
    assert codec("elsys-ers").interval_downlink(600) is None  # no settings downlink in the document followed


# --- Dragino LDDS75 -------------------------------------------------------------------

def test_ldds75_manual_field_examples() -> None:
    # LDDS75 user manual, uplink payload, composed from its per-field examples: battery 0x0B45 = 2885 mV,
    # distance 0x0B05 = 2821 mm, interrupt 0x00, DS18B20 0x0105 = 26.1 °C, sensor flag 0x01 (sensor detected).
    uplink = decode("dragino-ldds75", 2, "0B45" "0B05" "00" "0105" "01")
    assert only(uplink) == {"distance_mm": 2821.0, "temp_c": 26.1}
    assert uplink.battery_v == 2.885
    assert uplink.notes == ()


def test_ldds75_flag_bits_negative_temperature_and_interrupt() -> None:
    # dragino-decoder LDDS75_Decoder_V1.1.4.js: battery = bytes 0-1 & 0x3FFF (0x8B45 -> 2885 mV);
    # manual: DS18B20 0xFF3F -> -19.3 °C; interrupt flag 1 = interrupt uplink.
    uplink = decode("dragino-ldds75", 2, "8B45" "0B05" "01" "FF3F" "01")
    assert only(uplink) == {"distance_mm": 2821.0, "temp_c": -19.3}
    assert uplink.battery_v == 2.885
    assert uplink.notes == ("interrupt uplink",)


def test_ldds75_no_sensor_is_an_error_not_a_zero() -> None:
    # Manual: distance 0x0000 = the ultrasonic sensor is not detected; sensor flag 0 = no ultrasonic sensor.
    with pytest.raises(CodecError, match="not detected"):
        decode("dragino-ldds75", 2, "0B45" "0000" "00" "0105" "01")
    with pytest.raises(CodecError, match="sensor flag"):
        decode("dragino-ldds75", 2, "0B45" "0B05" "00" "0105" "00")


def test_ldds75_lorawan_devices_short_frame_is_rejected() -> None:
    # lorawan-devices vendor/dragino/ldds75-codec.yaml: fPort 2, [0E 1C 0B 05] -> {distance: "No Sensor"},
    # and fPort 42 -> "unknown FPort". Neither is a reading.
    with pytest.raises(CodecError, match="truncated"):
        decode("dragino-ldds75", 2, "0E1C0B05")
    with pytest.raises(CodecError, match="fPort 42"):
        decode("dragino-ldds75", 42, "0B450B0500010501")


def test_ldds75_below_minimum_range_passes_through_with_a_note() -> None:
    # Manual: flat-object range 280-7500 mm; 0x0100 = 256 mm is kept (plausibility is judged later), noted.
    uplink = decode("dragino-ldds75", 2, "0B45" "0100" "00" "0105" "01")
    assert only(uplink)["distance_mm"] == 256.0
    assert "minimum range" in uplink.notes[0]


def test_ldds75_interval_downlink() -> None:
    # Manual, "Set Transmit Interval Time": 0x01 + 3 bytes seconds; 0100001E = 30 s, 0100003C = 60 s.
    ldds75 = codec("dragino-ldds75")
    assert ldds75.interval_downlink(30) == (1, bytes.fromhex("0100001E"))
    assert ldds75.interval_downlink(60) == (1, bytes.fromhex("0100003C"))
    with pytest.raises(CodecError):
        ldds75.interval_downlink(0x1000000)


# --- Dragino LSN50 --------------------------------------------------------------------

def test_lsn50_lorawan_devices_example() -> None:
    # lorawan-devices vendor/dragino/lsn50-v2-codec.yaml: fPort 2, 0B54 0000 0000 00 00FC 0205 ->
    # BatV 2.9, TempC1 0, TempC_SHT 25.2, Hum_SHT 51.7, Work_mode IIC (MOD1)
    uplink = decode("dragino-lsn50", 2, "0B54" "0000" "0000" "00" "00FC" "0205")
    assert only(uplink) == {"surface_temp_c": 0.0, "air_temp_c": 25.2, "rh_pct": 51.7}
    assert uplink.battery_v == 2.9


def test_lsn50_manual_ds18b20_examples_without_i2c_sensor() -> None:
    # LSN50 user manual 2.4.1/2.4.2: battery 0x0B45 = 2885 mV; DS18B20 0105H -> 26.1, FF3FH -> -19.3.
    # Humidity 0 means no SHT (the decoder reads 7-8 as a BH1750's lux then): no air reading.
    uplink = decode("dragino-lsn50", 2, "0B45" "0105" "0000" "00" "0000" "0000")
    assert only(uplink) == {"surface_temp_c": 26.1}
    assert uplink.battery_v == 2.885
    assert only(decode("dragino-lsn50", 2, "0B45" "FF3F" "0000" "01" "0000" "0000")) == {"surface_temp_c": -19.3}
    assert decode("dragino-lsn50", 2, "0B45" "FF3F" "0000" "01" "0000" "0000").notes == ("interrupt uplink",)


def test_lsn50_missing_probe_and_i2c_null() -> None:
    # lsn50-v2.js: TempC1 7FFF -> "NULL" (no DS18B20): the road reading itself is missing.
    with pytest.raises(CodecError, match="DS18B20"):
        decode("dragino-lsn50", 2, "0B45" "7FFF" "0000" "00" "00FC" "0205")
    # lsn50-v2.js: TempC_SHT 7FFF/FFFF and Hum_SHT FFFF -> "NULL": no air reading, a note.
    uplink = decode("dragino-lsn50", 2, "0B45" "0105" "0000" "00" "FFFF" "FFFF")
    assert only(uplink) == {"surface_temp_c": 26.1}
    assert uplink.notes == ("I2C temperature/humidity sensor did not answer",)


def test_lsn50_other_modes_ports_and_lengths() -> None:
    # lsn50-v2.js: mode = (byte 6 & 0x7C) >> 2; 0x08 -> mode 2 = MOD3 (3ADC), another layout.
    with pytest.raises(CodecError, match="MOD=3"):
        decode("dragino-lsn50", 2, "0B45" "0105" "0000" "08" "00FC" "0205")
    with pytest.raises(CodecError, match="fPort 5"):  # port 5 is the device-status uplink (lsn50-v2.js)
        decode("dragino-lsn50", 5, "0B45" "0105" "0000" "00" "00FC" "0205")
    with pytest.raises(CodecError, match="truncated"):
        decode("dragino-lsn50", 2, "0B450105")
    with pytest.raises(CodecError, match="truncated"):
        decode("dragino-lsn50", 2, "0B45" "0105" "0000" "00" "00FC")
    # TDC as for every Dragino node: 0x01 + 3 bytes seconds (manual, "Set Transmit Interval Time").
    assert codec("dragino-lsn50").interval_downlink(1200) == (1, bytes.fromhex("010004B0"))


# --- every codec ----------------------------------------------------------------------

def test_registry_names_and_unknown_codec() -> None:
    assert set(CODECS) == {"milesight-em300-th", "elsys-ers", "dragino-ldds75", "milesight-em310-udl",
                           "dragino-lsn50"}
    for name, c in CODECS.items():
        assert c.name == name and c.kind in ("frog", "road", "bin") and "http" in c.source
    with pytest.raises(UnknownCodec, match="unknown codec 'x' \\(one of dragino-ldds75"):
        codec("x")


@pytest.mark.parametrize("name", sorted(CODECS))
@given(port=st.integers(0, 255), data=st.binary(max_size=80))
def test_any_bytes_decode_or_raise_codec_error(name: str, port: int, data: bytes) -> None:
    # A codec's only failure is CodecError (a dead letter), and what it returns is finite.
    try:
        uplink = CODECS[name].decode(port, data)
    except CodecError:
        return
    for m in uplink.measurements:
        assert all(math.isfinite(v) for v in m.values.values())


# The vendors' own decoders' output for the examples above, through each codec's vendor_fields: the same readings.
VENDOR_OUTPUTS = [
    # SensorDecoders EM300-TH/README.md
    ("milesight-em300-th", 85, "01755C03673401046865", {"battery": 92, "temperature": 30.8, "humidity": 50.5}),
    # SensorDecoders EM310-UDL/README.md
    ("milesight-em310-udl", 85, "01755C03824408040001", {"battery": 92, "distance": 2116, "position": "tilt"}),
    # Elsys reference example (elsys.js output)
    ("elsys-ers", 5, "0100e202290400270506060308070d62",
     {"temperature": 22.6, "humidity": 41, "light": 39, "motion": 6, "co2": 776, "vdd": 3426}),
    # dragino-decoder LDDS75_Decoder_V1.1.4.js for the manual's field examples (TempC is toFixed(2), a string)
    ("dragino-ldds75", 2, "0B45" "0B05" "00" "0105" "01",
     {"Node_type": "LDDS75", "Bat": 2.885, "Distance": 2821, "Interrupt_flag": 0, "TempC_DS18B20": "26.10",
      "Sensor_flag": 1}),
    # lorawan-devices lsn50-v2-codec.yaml
    ("dragino-lsn50", 2, "0B54" "0000" "0000" "00" "00FC" "0205",
     {"ADC_CH0V": 0, "BatV": 2.9, "Digital_IStatus": "L", "Door_status": "OPEN", "EXTI_Trigger": "FALSE",
      "Hum_SHT": 51.7, "TempC1": 0, "TempC_SHT": 25.2, "Work_mode": "IIC"}),
]


@pytest.mark.parametrize(("name", "port", "payload", "vendor_json"), VENDOR_OUTPUTS)
def test_vendor_fields_agree_with_the_codec(name: str, port: int, payload: str, vendor_json: dict[str, object]) -> None:
    c = CODECS[name]
    assert c.vendor_fields is not None and c.vendor_fields.kind == c.kind
    mapped = apply_mapping(c.vendor_fields, vendor_json)
    decoded = decode(name, port, payload)
    assert mapped is not None
    for field_name, value in only(mapped).items():
        assert only(decoded)[field_name] == pytest.approx(value)
    for battery in ("battery_v", "battery_pct"):
        if getattr(mapped, battery) is not None:
            assert getattr(decoded, battery) == pytest.approx(getattr(mapped, battery))


def test_measurement_timestamp_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Measurement({"distance_mm": 1.0}, ts=datetime(2024, 1, 1))


# --- field mappings -------------------------------------------------------------------

def test_mapping_from_the_documented_shape() -> None:
    # The accepted shape, as the task states it (lorawan/codecs/mapping.py docstring).
    mapping = parse_mapping('{"kind": "bin", "fields": {"distance_mm": "distance", "temp_c": {"path": "temp", '
                            '"scale": 0.1}}, "battery_v": {"path": "bat_mv", "scale": 0.001}}')
    assert mapping == FieldMapping("bin", {"distance_mm": FieldRule("distance"), "temp_c": FieldRule("temp", 0.1)},
                                   battery_v=FieldRule("bat_mv", 0.001))
    uplink = apply_mapping(mapping, {"distance": 1234, "temp": 215, "bat_mv": 3600})
    assert uplink is not None
    assert only(uplink) == pytest.approx({"distance_mm": 1234.0, "temp_c": 21.5})
    assert uplink.battery_v == pytest.approx(3.6) and uplink.battery_pct is None


def test_mapping_nested_paths_list_index_numeric_strings_and_offset() -> None:
    # value = raw * scale + offset: 6150 * 0.01 - 40 = 21.5 °C; "48.5" is a numeric string.
    mapping = parse_mapping({"kind": "frog", "fields": {
        "air_temp_c": {"path": "sensors.0.t", "scale": 0.01, "offset": -40},
        "rh_pct": "sensors.1.h"}, "battery_pct": "dev.bat"})
    uplink = apply_mapping(mapping, {"sensors": [{"t": 6150}, {"h": "48.5"}], "dev": {"bat": 77}})
    assert uplink is not None
    assert only(uplink) == pytest.approx({"air_temp_c": 21.5, "rh_pct": 48.5})
    assert uplink.battery_pct == 77


def test_mapping_missing_required_field_is_not_mapped() -> None:
    mapping = parse_mapping({"kind": "frog", "fields": {"air_temp_c": "t", "rh_pct": "h"}})
    assert apply_mapping(mapping, {"t": 20.0}) is None  # no humidity: the caller falls back to the codec
    assert apply_mapping(mapping, {"t": 20.0, "h": None}) is None  # JSON null reads as absent
    road = parse_mapping({"kind": "road", "fields": {"surface_temp_c": "s", "air_temp_c": "a", "rh_pct": "h"}})
    uplink = apply_mapping(road, {"a": -1.5})  # a road reading needs one temperature, either
    assert uplink is not None and only(uplink) == {"air_temp_c": -1.5}
    assert apply_mapping(road, {"h": 80}) is None
    indexed = parse_mapping({"kind": "bin", "fields": {"distance_mm": "d.3"}})
    assert apply_mapping(indexed, {"d": [1, 2]}) is None  # index past the end
    assert apply_mapping(indexed, {"d": 5}) is None  # a path through a number


@pytest.mark.parametrize("garbage", ["abc", True, False, [1], {"v": 1}, "nan", "inf"])
def test_mapping_garbage_value_names_the_path(garbage: object) -> None:
    mapping = parse_mapping({"kind": "bin", "fields": {"distance_mm": "level.mm"}})
    with pytest.raises(CodecError, match=r"level\.mm"):
        apply_mapping(mapping, {"level": {"mm": garbage}})


@pytest.mark.parametrize(("raw", "message"), [
    ({"kind": "frog", "fields": {"air_temp_c": "t", "rh_pct": "h", "distance_mm": "d"}}, "distance_mm"),
    ({"kind": "frog", "fields": {"air_temp_c": "t"}}, "must map air_temp_c and rh_pct"),
    ({"kind": "bin", "fields": {"temp_c": "t"}}, "must map distance_mm"),
    ({"kind": "bin", "fields": {"distance_mm": "d"}, "colour": "red"}, "colour"),
    ({"kind": "bin", "fields": {"distance_mm": {"path": "d", "unit": "cm"}}}, "unit"),
    ({"kind": "bin", "fields": {"distance_mm": {"path": "d", "scale": float("inf")}}}, "finite"),
    ('{"kind": "bin", "fields": {"distance_mm": {"path": "d", "scale": NaN}}}', "finite"),
    ({"kind": "bin", "fields": {"distance_mm": {"path": "d", "scale": 0}}}, "not be 0"),
    ({"kind": "bin", "fields": {"distance_mm": {"path": "d", "offset": True}}}, "finite"),
    ({"kind": "bin", "fields": {"distance_mm": {"scale": 2}}}, "needs a path"),
    ({"kind": "bin", "fields": {"distance_mm": "a..b"}}, "dotted"),
    ({"kind": "bin", "fields": {"distance_mm": 3}}, "a rule is a path"),
    ({"kind": "lamp", "fields": {"distance_mm": "d"}}, "unknown kind"),
    ({"fields": {"distance_mm": "d"}}, "needs a kind"),
    ({"kind": "bin"}, "needs 'fields'"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
])
def test_bad_mappings(raw: dict[str, object] | str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_mapping(raw)
