"""Drivers: the pure decoders against real sample data and datasheet values, properties of
the parsers (hypothesis), and the hardware adapters failing cleanly where there is none."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.drivers import bme280, dht22, ds18b20, gps, sht, ultrasonic
from firmware.drivers.base import Climate, Temperature
from firmware.drivers.battery import PowerSupplyBattery, parse_voltage_now
from firmware.errors import ChecksumError, ImplausibleValue, NoFix, SensorAbsent

# --- SHT3x / SHT4x ---------------------------------------------------------------------


def test_sht_crc_matches_the_datasheet() -> None:
    assert sht.sht_crc8(b"\xbe\xef") == 0x92  # Sensirion SHT3x datasheet, 4.12
    assert sht.sht_crc8(b"\x00\x00") == 0x81


def test_sht_frames_decode_to_degrees_and_percent() -> None:
    frame = bytes([0x66, 0x66, 0x93, 0x80, 0x00, 0xA2])  # 25.0 degC, 50 % (SHT3x formulas)
    assert sht.decode_sht(frame, "sht3x") == Climate(25.0, 50.0)
    assert sht.decode_sht(frame, "sht4x") == Climate(25.0, 56.5)  # SHT4x: -6 + 125 * ticks / 65535


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 47))
def test_any_single_bit_flip_in_an_sht_frame_is_caught(t_ticks: int, rh_ticks: int, bit: int) -> None:
    t, rh = t_ticks.to_bytes(2, "big"), rh_ticks.to_bytes(2, "big")
    frame = bytearray(t + bytes([sht.sht_crc8(t)]) + rh + bytes([sht.sht_crc8(rh)]))
    if frame[:2] != b"\xff\xff" or frame[3:5] != b"\xff\xff":
        climate = sht.decode_sht(bytes(frame), "sht3x")
        assert -45.0 <= climate.temp_c <= 130.0 and 0.0 <= climate.rh_pct <= 100.0
    frame[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises((ChecksumError, ImplausibleValue)):
        sht.decode_sht(bytes(frame), "sht3x")


# --- BME280 ----------------------------------------------------------------------------

def test_bme280_temperature_compensation_matches_the_datasheet_example() -> None:
    block = struct.pack("<Hhh", 27504, 26435, -1000)  # dig_T1..T3 from BST-BME280-DS002
    cal = bme280.parse_calibration(block, 75, bytes([0x6E, 0x01, 0x00, 0x13, 0x28, 0x03, 0x1E]))
    temp, _ = bme280.compensate_temperature(519888, cal)
    assert temp == pytest.approx(25.08, abs=0.01)
    assert (cal.h2, cal.h4, cal.h5, cal.h6) == (366, 0x138, 0x032, 30)  # 12-bit H4/H5 unpacking


def test_bme280_skipped_measurement_is_not_a_reading() -> None:
    cal = bme280.parse_calibration(struct.pack("<Hhh", 27504, 26435, -1000), 75, bytes(7))
    with pytest.raises(ImplausibleValue, match="skipped"):
        bme280.decode_measurement(bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0]), cal)


# --- DHT22 -----------------------------------------------------------------------------

def test_dht22_frames_from_the_datasheet() -> None:
    assert dht22.decode_frame(bytes([0x02, 0x8C, 0x01, 0x5F, 0xEE])) == Climate(35.1, 65.2)
    assert dht22.decode_frame(bytes([0x02, 0x8C, 0x80, 0x65, 0x73])) == Climate(-10.1, 65.2)
    with pytest.raises(ChecksumError, match="checksum"):
        dht22.decode_frame(bytes([0x02, 0x8C, 0x01, 0x5F, 0xEF]))


def test_dht22_retries_a_bad_frame_then_reports_it(tmp_path: Path) -> None:
    folder = tmp_path / "iio:device0"
    folder.mkdir()
    (folder / "in_temp_input").write_text("150000\n")  # 150 degC: what a garbled frame gives
    (folder / "in_humidityrelative_input").write_text("50000\n")
    sensor = dht22.DHT22Sensor("dht", retry_wait_s=0.0)
    sensor.folder = folder
    with pytest.raises(ImplausibleValue):
        sensor.read()
    (folder / "in_temp_input").write_text("21300\n")
    assert sensor.read() == Climate(21.3, 50.0)


# --- DS18B20 ---------------------------------------------------------------------------

W1_GOOD = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
W1_BAD_CRC = "72 01 4b 46 7f ff 0e 10 57 : crc=c3 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
W1_POWER_ON = "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n"
W1_FROST = "ec ff 4b 46 7f ff 0c 10 a5 : crc=a5 YES\nec ff 4b 46 7f ff 0c 10 a5 t=-1250\n"


def test_w1_slave_parsing() -> None:
    assert ds18b20.parse_w1_slave(W1_GOOD) == Temperature(23.125)
    assert ds18b20.parse_w1_slave(W1_FROST) == Temperature(-1.25)
    with pytest.raises(ChecksumError, match="CRC"):
        ds18b20.parse_w1_slave(W1_BAD_CRC)
    with pytest.raises(ImplausibleValue, match="power-on"):
        ds18b20.parse_w1_slave(W1_POWER_ON)
    with pytest.raises(ChecksumError):
        ds18b20.parse_w1_slave("")


def test_ds18b20_reads_sysfs_and_says_when_the_probe_is_missing(tmp_path: Path) -> None:
    sensor = ds18b20.DS18B20Sensor("road", root=tmp_path)
    with pytest.raises(SensorAbsent, match="no 1-wire probe"):
        sensor.read()
    (tmp_path / "28-0316a2795cff").mkdir()
    (tmp_path / "28-0316a2795cff" / "w1_slave").write_text(W1_GOOD)
    assert sensor.read() == Temperature(23.125)


# --- NMEA GPS --------------------------------------------------------------------------

RMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"


def test_nmea_positions_from_real_sentences() -> None:
    rmc = gps.parse_position(RMC)
    assert rmc is not None and (rmc.lat, rmc.lon) == (48.1173, pytest.approx(11.5166667))
    assert rmc.utc is not None and rmc.utc.isoformat() == "1994-03-23T12:35:19+00:00"
    gga = gps.parse_position(GGA)
    assert gga is not None and gga.lat == 48.1173
    assert gps.parse_position("$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00*74") is None
    body = "GPRMC,000000,A,3351.000,S,15112.000,W,0,0,010125,,"
    southern = gps.parse_position(f"${body}*{gps.nmea_checksum(body):02X}")
    assert southern is not None and (southern.lat, southern.lon) == (-33.85, -151.2)


def test_nmea_without_a_fix_is_nofix_and_a_bad_checksum_is_caught() -> None:
    with pytest.raises(NoFix):
        gps.parse_position("$GPGGA,,,,,,0,00,99.99,,,,,,*48")  # u-blox before its first fix
    with pytest.raises(NoFix):
        gps.parse_position("$GPRMC,,V,,,,,,,,,,N*53")
    with pytest.raises(ChecksumError):
        gps.parse_position(RMC.replace("4807", "4808"))


@given(st.text(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="$*"), min_size=1),
       st.data())
def test_nmea_checksum_catches_any_single_character_change(body: str, data: st.DataObject) -> None:
    line = f"${body}*{gps.nmea_checksum(body):02X}"
    assert gps.split_sentence(line) == body.split(",")
    index = data.draw(st.integers(0, len(body) - 1))
    replacement = data.draw(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="$*"))
    if replacement != body[index]:
        with pytest.raises(ChecksumError):
            changed = body[:index] + replacement + body[index + 1:]
            gps.split_sentence(f"${changed}*{gps.nmea_checksum(body):02X}")


# --- ultrasonic ------------------------------------------------------------------------

def test_echo_times_become_millimetres_at_the_air_temperature() -> None:
    assert ultrasonic.speed_of_sound_m_s(0.0) == pytest.approx(331.3)
    assert ultrasonic.echo_to_mm(0.005831, 20.0) == pytest.approx(1001.2, abs=0.5)
    # the same echo is a shorter distance in cold air: ignoring it errs ~3.5 % at 0 degC
    assert ultrasonic.echo_to_mm(0.005831, 0.0) < ultrasonic.echo_to_mm(0.005831, 20.0) * 0.97


def test_median_ignores_lost_echoes_and_outliers_and_refuses_the_blind_zone() -> None:
    model = ultrasonic.MODELS["jsn-sr04t"]
    echo = 2 * 0.8 / ultrasonic.speed_of_sound_m_s(10.0)  # 800 mm
    out_of_range = 0.03  # 5 m: a reflection from beyond the bin
    reading = ultrasonic.median_distance([echo, None, echo * 1.01, echo * 0.99, out_of_range], 10.0, model)
    assert reading.distance_mm == pytest.approx(800.0, abs=1.0) and reading.pings == 3
    blind = 2 * 0.1 / ultrasonic.speed_of_sound_m_s(10.0)  # 100 mm: inside the 250 mm blind zone
    with pytest.raises(ImplausibleValue, match="blind zone"):
        ultrasonic.median_distance([blind] * 5, 10.0, model)
    with pytest.raises(ImplausibleValue, match="only 1 of 5"):
        ultrasonic.median_distance([echo, None, None, None, None], 10.0, model)


@given(st.lists(st.floats(0.0015, 0.025), min_size=3, max_size=15), st.floats(-30, 45))
def test_the_median_lies_within_the_valid_pings(echoes: list[float], temp: float) -> None:
    model = ultrasonic.MODELS["jsn-sr04t"]
    valid = [d for d in (ultrasonic.echo_to_mm(e, temp) for e in echoes)
             if model.blind_zone_mm <= d <= model.max_range_mm]
    if len(valid) < 3:
        with pytest.raises(ImplausibleValue):
            ultrasonic.median_distance(echoes, temp, model)
    else:
        reading = ultrasonic.median_distance(echoes, temp, model)
        assert min(valid) - 0.1 <= reading.distance_mm <= max(valid) + 0.1


def test_ultrasonic_driver_with_injected_pings() -> None:
    echo = 2 * 0.6 / ultrasonic.speed_of_sound_m_s(5.0)
    sensor = ultrasonic.UltrasonicSensor("bin", ping=lambda: echo, ping_gap_s=0.0, air_temp=lambda: 5.0)
    assert sensor.read().distance_mm == pytest.approx(600.0, abs=0.1)


# --- battery and the hardware-less machine ---------------------------------------------

def test_battery_voltage(tmp_path: Path) -> None:
    assert parse_voltage_now("3712000\n").volts == 3.712
    with pytest.raises(ImplausibleValue):
        parse_voltage_now("n/a")
    with pytest.raises(SensorAbsent):
        PowerSupplyBattery("bat", root=tmp_path).read()


@pytest.mark.parametrize("sensor", [sht.SHTSensor("sht", bus=97), bme280.BME280Sensor("bme", bus=97),
                                    gps.SerialGPS("gps", port="/dev/does-not-exist"),
                                    ultrasonic.UltrasonicSensor("sonar", ping_gap_s=0.0)],
                         ids=["sht31", "bme280", "gps", "ultrasonic"])
def test_hardware_drivers_build_anywhere_and_report_absence(sensor: object) -> None:
    """No I2C bus, serial port or GPIO here (nor, maybe, the `pi` extra): SensorAbsent, not a crash."""
    with pytest.raises(SensorAbsent) as caught:
        sensor.read()  # type: ignore[attr-defined]
    assert caught.value.hint
    sensor.close()  # type: ignore[attr-defined]
