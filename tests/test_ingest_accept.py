"""The pure acceptance rules: what of a message is written, refused, or noted about a device."""

from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityops.storage.devices import RegisteredDevice
from contract.telemetry import FrogBatch, FrogReading, RoadBatch, RoadReading, encode_batch, telemetry_topic
from ingest.accept import Incoming, decode, judge, status_news

NOW = datetime(2025, 1, 6, 12, tzinfo=UTC)
AHEAD = timedelta(minutes=5)
REGISTRY = {
    "frog-1": RegisteredDevice("frog-1", "frog", NOW - timedelta(days=10), retired=False),
    "frog-old": RegisteredDevice("frog-old", "frog", NOW - timedelta(days=10), retired=True),
    "road-1": RegisteredDevice("road-1", "road", NOW - timedelta(days=10), retired=False),
}


def frog(device_id: str = "frog-1", *readings: FrogReading, seq: int = 1) -> bytes:
    return encode_batch(FrogBatch(v=1, device_id=device_id, seq=seq, fw="1.2.0", battery_v=3.6,
                                  readings=list(readings) or [FrogReading(ts=NOW, air_temp_c=20, rh_pct=55)]))


def verdict_for(topic: str, payload: bytes):
    return judge([decode(Incoming(topic, payload, NOW))], REGISTRY, AHEAD)


def test_a_good_message_becomes_rows_in_column_order_and_device_news() -> None:
    verdict = verdict_for(telemetry_topic("frog-1"), frog())
    assert verdict.rows["frog"] == [("frog-1", NOW, 20.0, 55.0)]
    assert verdict.dead_letters == []
    state = verdict.states["frog-1"]
    assert (state.last_seen, state.battery_v, state.firmware_version, state.last_seq) == (NOW, 3.6, "1.2.0", 1)


def test_road_rows_follow_the_road_table() -> None:
    payload = encode_batch(RoadBatch(v=1, device_id="road-1", seq=0, fw="1", readings=[
        RoadReading(ts=NOW, surface_temp_c=-1.0, surface_state="ice", lat=52.4, lon=-1.9)]))
    assert verdict_for(telemetry_topic("road-1"), payload).rows["road"] == [
        ("road-1", NOW, -1.0, None, "ice", 52.4, -1.9, None)]


def test_whole_messages_are_refused_with_the_reason() -> None:
    cases = {
        "payload device_id 'frog-1' does not match the topic's 'frog-2'": (telemetry_topic("frog-2"), frog()),
        "unknown device": (telemetry_topic("frog-9"), frog("frog-9")),
        "device is retired": (telemetry_topic("frog-old"), frog("frog-old")),
        "payload kind 'frog' but the device is registered as 'road'": (telemetry_topic("road-1"), frog("road-1")),
        "malformed telemetry": (telemetry_topic("frog-1"), b"{not json"),
        "not a device topic": ("somewhere/else", frog()),
    }
    for reason, (topic, payload) in cases.items():
        verdict = verdict_for(topic, payload)
        assert verdict.reading_count == 0, reason
        [letter] = verdict.dead_letters
        assert reason in letter.reason
        assert letter.payload == payload and letter.topic == topic and letter.received_at == NOW


def test_bad_readings_are_refused_one_by_one_and_the_rest_kept() -> None:
    good = FrogReading(ts=NOW - timedelta(minutes=5), air_temp_c=19, rh_pct=60)
    wet = FrogReading(ts=NOW - timedelta(minutes=10), air_temp_c=19, rh_pct=120)
    future = FrogReading(ts=NOW + timedelta(hours=1), air_temp_c=19, rh_pct=60)
    ancient = FrogReading(ts=NOW - timedelta(days=20), air_temp_c=19, rh_pct=60)
    verdict = verdict_for(telemetry_topic("frog-1"), frog("frog-1", good, wet, future, ancient))
    assert verdict.rows["frog"] == [("frog-1", good.ts, 19.0, 60.0)]
    reasons = [d.reason for d in verdict.dead_letters]
    assert reasons[0] == "reading 1: rh_pct 120 outside 0..100"
    assert reasons[1].startswith("reading 2: timestamp") and "ahead of the arrival time" in reasons[1]
    assert reasons[2].startswith("reading 3: timestamp") and "before the device was registered" in reasons[2]
    assert msgspec.json.decode(verdict.dead_letters[0].payload)["rh_pct"] == 120


def test_news_of_one_device_merges_latest_first() -> None:
    first = Incoming(telemetry_topic("frog-1"), frog(seq=7), NOW - timedelta(seconds=30))
    later = Incoming(telemetry_topic("frog-1"), encode_batch(FrogBatch(
        v=1, device_id="frog-1", seq=8, fw="1.3.0", battery_v=None,
        readings=[FrogReading(ts=NOW, air_temp_c=20, rh_pct=50)])), NOW)
    verdict = judge([decode(first), decode(later)], REGISTRY, AHEAD)
    state = verdict.states["frog-1"]
    assert (state.last_seen, state.last_seq, state.firmware_version, state.battery_v) == (NOW, 8, "1.3.0", 3.6)


def test_status_messages_are_news_only_for_known_devices() -> None:
    assert status_news("cityops/v1/devices/frog-1/status", b"offline", REGISTRY).online is False
    assert status_news("cityops/v1/devices/frog-1/status", b"online", REGISTRY).online is True
    assert status_news("cityops/v1/devices/frog-9/status", b"online", REGISTRY) is None
    assert status_news("cityops/v1/devices/frog-1/status", b"rebooting", REGISTRY) is None


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
_fuzzed = st.one_of(
    st.binary(max_size=200),
    _json_values.map(msgspec.json.encode),
    st.dictionaries(st.sampled_from(["kind", "v", "device_id", "seq", "fw", "battery_v", "readings", "x"]),
                    _json_values, max_size=7).map(msgspec.json.encode),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(payloads=st.lists(_fuzzed, min_size=50, max_size=50))
def test_ten_thousand_fuzzed_payloads_never_crash_and_each_is_written_or_refused_with_a_reason(
        payloads: list[bytes]) -> None:
    """200 examples of 50 payloads: 10,000 in all, with less of hypothesis's per-example overhead."""
    for payload in payloads:
        verdict = verdict_for(telemetry_topic("frog-1"), payload)
        decoded = decode(Incoming(telemetry_topic("frog-1"), payload, NOW))
        refused_readings = sum(d.reason.startswith("reading ") for d in verdict.dead_letters)
        whole_refusal = verdict.reading_count == 0 and len(verdict.dead_letters) == 1 and not refused_readings
        assert whole_refusal or verdict.reading_count + refused_readings == decoded.reading_count
        assert all(d.reason for d in verdict.dead_letters)
