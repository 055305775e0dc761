"""The device/platform contract: topics and payloads, round trips and refusals."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.telemetry import (
    BinBatch,
    BinReading,
    DeviceConfig,
    DeviceTopic,
    FrogBatch,
    FrogReading,
    RoadBatch,
    RoadReading,
    TelemetryError,
    batch_kind,
    decode_batch,
    decode_config,
    encode_batch,
    encode_config,
    reading_problem,
    telemetry_topic,
)

T0 = datetime(2025, 1, 6, tzinfo=UTC)


def frog(**fields) -> FrogBatch:
    base = {"v": 1, "device_id": "frog-0001", "seq": 1, "fw": "0.1.0",
            "readings": [FrogReading(ts=T0, air_temp_c=19.5, rh_pct=61.0)]}
    return FrogBatch(**{**base, **fields})


def test_topics_round_trip_and_refuse_foreign_ones() -> None:
    assert telemetry_topic("frog-0001") == "cityops/v1/devices/frog-0001/telemetry"
    assert DeviceTopic.parse("cityops/v1/devices/bin-7/status") == DeviceTopic("bin-7", "status")
    for bad in ("cityops/v1/devices/frog-1", "cityops/v2/devices/x1/telemetry",
                "cityops/v1/devices/Frog 1/telemetry", "cityops/v1/devices/a/b/telemetry"):
        with pytest.raises(TelemetryError):
            DeviceTopic.parse(bad)


def test_each_kind_round_trips_and_reports_its_kind() -> None:
    batches = [
        frog(),
        RoadBatch(v=1, device_id="gritter-1", seq=9, fw="0.1.0", battery_v=12.6, readings=[
            RoadReading(ts=T0, surface_temp_c=-1.5, surface_state="wet", lat=52.48, lon=-1.89)]),
        BinBatch(v=1, device_id="bin-0042", seq=0, fw="0.1.0", readings=[
            BinReading(ts=T0, distance_mm=420.0, temp_c=11.0, tilt_deg=3.0)]),
    ]
    for batch, kind in zip(batches, ("frog", "road", "bin"), strict=True):
        decoded = decode_batch(encode_batch(batch))
        assert decoded == batch and batch_kind(decoded) == kind


@pytest.mark.parametrize(("payload", "reason"), [
    (b"not json", "malformed"),
    (b'{"kind":"frog","v":1,"device_i\xf0":"x1","seq":0,"fw":"1"}', "malformed"),  # bad UTF-8 in a key
    (b'{"kind":"lamp","v":1,"device_id":"x1","seq":1,"fw":"1"}', "Invalid value 'lamp'"),
    (b'{"kind":"frog","v":1,"device_id":"x1","seq":1}', "missing required field `fw`"),
    (b'{"kind":"frog","v":3,"device_id":"x1","seq":1,"fw":"1"}', "unsupported payload version 3"),
    (b'{"kind":"frog","v":1,"device_id":"X 1","seq":1,"fw":"1"}', "invalid device id"),
    (b'{"kind":"frog","v":1,"device_id":"x1","seq":1,"fw":"1","readings":'
     b'[{"ts":"2025-01-01T00:00:00","air_temp_c":1,"rh_pct":2}]}', "timezone"),
    (b'{"kind":"frog","v":1,"device_id":"x1","seq":1,"fw":"1","readings":'
     b'[{"ts":"2025-01-01T00:00:00Z","air_temp_c":"warm","rh_pct":2}]}', "Expected `float`"),
    (b'{"kind":"frog","v":1,"device_id":"x1","seq":1,"fw":"1","extra":true}', "unknown field"),
])
def test_malformed_payloads_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(TelemetryError, match=reason):
        decode_batch(payload)


@pytest.mark.parametrize(("reading", "problem"), [
    (FrogReading(ts=T0, air_temp_c=20.0, rh_pct=100.5), "rh_pct 100.5 outside 0..100"),
    (FrogReading(ts=T0, air_temp_c=-60.0, rh_pct=50.0), "air_temp_c -60 outside -50..80"),
    (FrogReading(ts=T0, air_temp_c=float("nan"), rh_pct=50.0), "air_temp_c is not a finite number"),
    (RoadReading(ts=T0, surface_temp_c=2.0, lat=52.0), "lat and lon must come together"),
    (BinReading(ts=T0, fill_fraction=1.2), "fill_fraction 1.2 outside 0..1"),
])
def test_impossible_values_are_named(reading, problem: str) -> None:
    assert reading_problem(reading) == problem


def test_plausible_extremes_are_accepted() -> None:
    assert reading_problem(FrogReading(ts=T0, air_temp_c=-50.0, rh_pct=0.0)) is None
    assert reading_problem(RoadReading(ts=T0)) is None


def test_config_round_trips_and_omits_what_is_unset() -> None:
    config = DeviceConfig(sample_interval_s=300, calibration={"rh_offset": -1.5})
    assert decode_config(encode_config(config)) == config
    assert b"bin_depth_mm" not in encode_config(config)
    with pytest.raises(TelemetryError):
        decode_config(b'{"sample_interval_s": 1}')


@given(st.lists(st.tuples(st.integers(0, 10_000), st.floats(-50, 80), st.floats(0, 100)), max_size=50),
       st.integers(0, 2**40))
def test_any_valid_frog_batch_round_trips(readings, seq: int) -> None:
    batch = frog(seq=seq, readings=[FrogReading(ts=T0 + timedelta(minutes=m), air_temp_c=t, rh_pct=h)
                                    for m, t, h in readings])
    assert decode_batch(encode_batch(batch)) == batch
    assert all(reading_problem(r) is None for r in batch.readings)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_telemetry_error(payload: bytes) -> None:
    try:
        decode_batch(payload)
    except TelemetryError as exc:
        assert exc.reason
