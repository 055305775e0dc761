"""lorawan.events against the network servers' published examples.

Sources of the fixtures (trimmed to the fields we read, values unchanged):
- CS_DOCS: ChirpStack v4 documentation, "Event types" (chirpstack-docs, src/chirpstack/integrations/events.md),
  the JSON examples of `up`, `status`, `join`, `ack`, `txack`, `log`, `location`, `integration`.
- CS_PROTO: chirpstack api/proto/integration/integration.proto (field names; proto3 JSON omits defaults).
- CS_MQTT: ChirpStack v4 documentation, "MQTT" (event topic, `command/down` topic and payload).
- TTS_FORMATS: The Things Stack documentation, "Data Formats" (lorawan-stack-docs,
  doc/content/the-things-stack/concepts/data-formats/_index.md): join, uplink, downlink event examples;
  its note: empty fields ("", 0, false) are omitted.
- TTS_MQTT: The Things Stack documentation, "MQTT Server" (doc/content/integrations/mqtt/_index.md):
  topics, the `down/push` payload, the older uplink and `down/ack` examples.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from lorawan import events
from lorawan.errors import EventError
from lorawan.events import (
    DownlinkAck,
    JoinEvent,
    ServerKind,
    StatusEvent,
    Uplink,
    downlink_message,
    parse,
    topic_filters,
)

# -- ChirpStack v4 fixtures (CS_DOCS) -----------------------------------------------------------

CS_APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
CS_DEVICE_INFO: dict[str, Any] = {
    "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
    "tenantName": "ChirpStack",
    "applicationId": CS_APP,
    "applicationName": "Test application",
    "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
    "deviceProfileName": "Test device-profile",
    "deviceName": "Test device",
    "devEui": "0101010101010101",
    "tags": {"key": "value"},
}
CS_UP: dict[str, Any] = {
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2022-07-18T09:34:15.775023242+00:00",
    "deviceInfo": CS_DEVICE_INFO,
    "devAddr": "00189440",
    "dr": 1,
    "fPort": 1,
    "data": "qg==",
    "rxInfo": [{
        "gatewayId": "0016c001f153a14c",
        "uplinkId": 4217106255,
        "rssi": -36,
        "snr": 10.5,
        "context": "E3OWOQ==",
        "metadata": {"region_name": "eu868", "region_common_name": "EU868"},
    }],
    "txInfo": {"frequency": 867100000,
               "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 11, "codeRate": "CR_4_5"}}},
}
CS_STATUS: dict[str, Any] = {
    "deduplicationId": "bf2a9746-1c8b-49be-a92e-f0b89c8534e4",
    "time": "2022-07-18T09:35:06.927172638+00:00",
    "deviceInfo": CS_DEVICE_INFO,
    "margin": 10,
    "batteryLevel": 88.3,
}
CS_JOIN: dict[str, Any] = {
    "deduplicationId": "c9dbe358-2578-4fb7-b295-66b44edc45a6",
    "time": "2022-07-18T09:33:28.823500726+00:00",
    "deviceInfo": CS_DEVICE_INFO,
    "devAddr": "00189440",
}
CS_ACK: dict[str, Any] = {
    "deduplicationId": "856a03e7-80f6-4c26-b971-9dcb34a59c2e",
    "time": "2022-07-18T09:38:49.235700766+00:00",
    "deviceInfo": CS_DEVICE_INFO,
    "queueItemId": "1bbcab1d-6ec6-4136-b3f5-d63be1dc08de",
    "acknowledged": True,
    "fCntDown": 3,
}
CS_TXACK: dict[str, Any] = {
    "downlinkId": 3461958127,
    "time": "2022-07-18T09:37:48.929184085+00:00",
    "deviceInfo": CS_DEVICE_INFO,
    "queueItemId": "42cb6459-a640-46ec-9623-bdff39dc4736",
    "fCntDown": 2,
    "gatewayId": "0016c001f153a14c",
}
CS_LOG: dict[str, Any] = {
    "time": "2022-07-18T09:39:57.311414029+00:00",
    "deviceInfo": CS_DEVICE_INFO,
    "level": "ERROR",
    "code": "UPLINK_MIC",
    "description": "MIC of join-request is invalid, make sure keys are correct",
    "context": {"deduplication_id": "4e91db13-5ce3-4c8c-ab0f-dfc626cf0771"},
}


def cs_topic(event: str, dev_eui: str = "0101010101010101") -> str:
    # CS_MQTT: application/APPLICATION_ID/device/DEV_EUI/event/EVENT
    return f"application/{CS_APP}/device/{dev_eui}/event/{event}"


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def changed(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A deep copy with top-level fields replaced; a value of ... removes the field."""
    out = copy.deepcopy(body)
    for key, value in fields.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# -- ChirpStack: each event type ----------------------------------------------------------------


def test_chirpstack_uplink_from_the_docs_example() -> None:
    event = parse("chirpstack", cs_topic("up"), encode(CS_UP))
    # every value below is read off the CS_DOCS `up` example; fCnt and confirmed are absent there,
    # which proto3 JSON means as 0 and false (CS_PROTO)
    assert event == Uplink(
        dev_eui="0101010101010101",
        received_at=datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=UTC),
        f_cnt=0,
        f_port=1,
        data=b"\xaa",  # "qg==" is base64 of the single byte 0xAA
        decoded=None,
        dedup_id="3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        dev_addr="00189440",
        session=None,
        device_name="Test device",
        application_id=CS_APP,
        profile="Test device-profile",
        confirmed=False,
        gateways=1,
        rssi=-36.0,
        snr=10.5,
    )


def test_chirpstack_uplink_with_counter_object_two_gateways_and_z_time() -> None:
    # CS_PROTO: fCnt, confirmed and object (the codec's output, a google.protobuf.Struct) when set;
    # protobuf's JSON mapping writes Timestamps as RFC 3339 with 'Z' and up to 9 fractional digits
    body = changed(CS_UP, fCnt=4711, confirmed=True, object={"temperature": 21.5},
                   time="2023-04-26T10:38:13.123456789Z",
                   rxInfo=[{"gatewayId": "a", "rssi": -110, "snr": -7.25}, {"gatewayId": "b", "rssi": -90, "snr": -9}])
    event = parse("chirpstack", cs_topic("up"), encode(body))
    assert isinstance(event, Uplink)
    assert event.f_cnt == 4711
    assert event.confirmed is True
    assert event.decoded == {"temperature": 21.5}
    assert event.received_at == datetime(2023, 4, 26, 10, 38, 13, 123456, tzinfo=UTC)  # nanoseconds cut to µs
    assert (event.gateways, event.rssi, event.snr) == (2, -90.0, -7.25)  # best of each, over both gateways


def test_chirpstack_uplink_without_port_or_data_is_a_mac_only_frame() -> None:
    # the brief: absent fPort -> None, absent data -> b""; an uplink heard by no gateway has no rssi
    event = parse("chirpstack", cs_topic("up"), encode(changed(CS_UP, fPort=..., data=..., rxInfo=...)))
    assert isinstance(event, Uplink)
    assert (event.f_port, event.data, event.gateways, event.rssi, event.snr) == (None, b"", 0, None, None)


def test_chirpstack_time_with_an_offset_becomes_utc() -> None:
    # RFC 3339 allows any offset; 11:34:15+02:00 is 09:34:15 UTC
    event = parse("chirpstack", cs_topic("up"), encode(changed(CS_UP, time="2022-07-18T11:34:15.5+02:00")))
    assert isinstance(event, Uplink)
    assert event.received_at == datetime(2022, 7, 18, 9, 34, 15, 500000, tzinfo=UTC)
    assert event.received_at.utcoffset() is not None


def test_chirpstack_dev_eui_is_normalised_to_lower_case() -> None:
    info = dict(CS_DEVICE_INFO, devEui="0016C001F000175A")
    event = parse("chirpstack", cs_topic("up", "0016C001F000175A"), encode(changed(CS_UP, deviceInfo=info)))
    assert isinstance(event, Uplink)
    assert event.dev_eui == "0016c001f000175a"


def test_chirpstack_status_from_the_docs_example() -> None:
    event = parse("chirpstack", cs_topic("status"), encode(CS_STATUS))
    # CS_DOCS `status`: margin 10, batteryLevel 88.3 (read from JSON as the same float); externalPowerSource
    # absent = false (CS_PROTO)
    assert event == StatusEvent(dev_eui="0101010101010101",
                                received_at=datetime(2022, 7, 18, 9, 35, 6, 927172, tzinfo=UTC),
                                battery_pct=88.3, external_power=False, margin=10)


@pytest.mark.parametrize(("flags", "external"), [
    ({"externalPowerSource": True}, True),        # CS_PROTO: external_power_source
    ({"batteryLevelUnavailable": True}, False),   # CS_PROTO: battery_level_unavailable
])
def test_chirpstack_status_without_a_battery_level(flags: dict[str, bool], external: bool) -> None:
    event = parse("chirpstack", cs_topic("status"), encode(changed(CS_STATUS, batteryLevel=..., **flags)))
    assert isinstance(event, StatusEvent)
    assert event.battery_pct is None
    assert event.external_power is external


def test_chirpstack_status_absent_margin_is_zero() -> None:
    # CS_PROTO: margin is an int32; proto3 JSON omits 0, so an absent margin is 0 dB, not unknown
    event = parse("chirpstack", cs_topic("status"), encode(changed(CS_STATUS, margin=...)))
    assert isinstance(event, StatusEvent)
    assert event.margin == 0


def test_chirpstack_join_from_the_docs_example() -> None:
    event = parse("chirpstack", cs_topic("join"), encode(CS_JOIN))
    assert event == JoinEvent(dev_eui="0101010101010101",
                              received_at=datetime(2022, 7, 18, 9, 33, 28, 823500, tzinfo=UTC),
                              dev_addr="00189440")  # CS_DOCS `join`


def test_chirpstack_ack_from_the_docs_example() -> None:
    event = parse("chirpstack", cs_topic("ack"), encode(CS_ACK))
    assert event == DownlinkAck(dev_eui="0101010101010101",
                                received_at=datetime(2022, 7, 18, 9, 38, 49, 235700, tzinfo=UTC),
                                acknowledged=True, reference="1bbcab1d-6ec6-4136-b3f5-d63be1dc08de")  # CS_DOCS `ack`


def test_chirpstack_nack_is_an_absent_acknowledged() -> None:
    # CS_PROTO AckEvent: "confirmation ... received -or- when the downlink timed out"; false is omitted in JSON
    event = parse("chirpstack", cs_topic("ack"), encode(changed(CS_ACK, acknowledged=...)))
    assert isinstance(event, DownlinkAck)
    assert event.acknowledged is False


def test_chirpstack_txack_from_the_docs_example() -> None:
    event = parse("chirpstack", cs_topic("txack"), encode(CS_TXACK))
    # CS_PROTO TxAckEvent: the gateway took the downlink, which says nothing of the device: acknowledged None
    assert event == DownlinkAck(dev_eui="0101010101010101",
                                received_at=datetime(2022, 7, 18, 9, 37, 48, 929184, tzinfo=UTC),
                                acknowledged=None, reference="42cb6459-a640-46ec-9623-bdff39dc4736")


@pytest.mark.parametrize("event", ["log", "location", "integration", "some-future-event"])
def test_chirpstack_events_we_ignore(event: str) -> None:
    # CS_DOCS lists log, location and integration events; the brief: knowingly ignored -> None
    assert parse("chirpstack", cs_topic(event), encode(CS_LOG)) is None


@pytest.mark.parametrize("body", [
    CS_UP,
    changed(CS_UP, fCnt=4711, confirmed=True, object={"temperature": 21.5}, time="2023-04-26T10:38:13.123456789Z",
            rxInfo=[{"gatewayId": "a", "rssi": -110, "snr": -7.25}, {"gatewayId": "b", "rssi": -90}]),
    changed(CS_UP, fPort=..., data=..., rxInfo=..., devAddr="", deduplicationId=""),
    changed(CS_UP, data="-_8=", time="2022-07-18T11:34:15.5+02:00", rxInfo=[{"snr": 3}]),  # URL-safe base64
    changed(CS_UP, devAddr=None, rxInfo=[{"rssi": None}], deviceInfo=dict(CS_DEVICE_INFO, deviceName=None)),
], ids=["docs", "counter-object-two-gateways", "mac-only", "url-safe-offset", "nulls"])
def test_chirpstack_uplinks_read_alike_by_the_fast_path_and_the_field_readers(
        body: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # the hot path (msgspec) must give exactly what the field readers give, or leave the message to them
    topic, payload = cs_topic("up"), encode(body)
    try:
        fast: Uplink | EventError | None = parse("chirpstack", topic, payload)
    except EventError as exc:
        fast = exc
    monkeypatch.setattr(events, "_chirpstack_up_fast", lambda *_: None)
    try:
        careful: Uplink | EventError | None = parse("chirpstack", topic, payload)
    except EventError as exc:
        careful = exc
    if isinstance(careful, EventError):
        assert isinstance(fast, EventError) and fast.reason == careful.reason
    else:
        assert fast == careful


# -- ChirpStack: malformed messages, each naming its field --------------------------------------


@pytest.mark.parametrize(("topic_eui", "payload", "field"), [
    ("0101010101010101", b"{not json", "payload"),
    ("0101010101010101", b"\xff\xfe", "payload"),
    ("0101010101010101", b"[1, 2]", "payload"),
    ("0101010101010101", encode(changed(CS_UP, deviceInfo=...)), "deviceInfo"),
    ("0101010101010101", encode(changed(CS_UP, deviceInfo=dict(CS_DEVICE_INFO, devEui=None))), "deviceInfo.devEui"),
    ("0101010101010101", encode(changed(CS_UP, deviceInfo=dict(CS_DEVICE_INFO, devEui="01010101"))),
     "deviceInfo.devEui"),
    ("0101010101010101", encode(changed(CS_UP, deviceInfo=dict(CS_DEVICE_INFO, devEui="010101010101010g"))),
     "deviceInfo.devEui"),
    ("0202020202020202", encode(CS_UP), "deviceInfo.devEui"),  # CS_MQTT: the topic carries the DevEUI
    ("not-an-eui", encode(CS_UP), "topic DevEUI"),
    ("0101010101010101", encode(changed(CS_UP, data="qg=")), "data"),
    ("0101010101010101", encode(changed(CS_UP, data="q!g=")), "data"),
    ("0101010101010101", encode(changed(CS_UP, time=...)), "time"),
    ("0101010101010101", encode(changed(CS_UP, time="yesterday")), "time"),
    ("0101010101010101", encode(changed(CS_UP, time="2022-07-18T09:34:15")), "time"),  # no offset
    ("0101010101010101", encode(changed(CS_UP, fCnt=-1)), "fCnt"),
    ("0101010101010101", encode(changed(CS_UP, fCnt=2**32)), "fCnt"),  # CS_PROTO: uint32
    ("0101010101010101", encode(changed(CS_UP, fCnt="7")), "fCnt"),
    ("0101010101010101", encode(changed(CS_UP, fPort=256)), "fPort"),  # LoRaWAN FPort is one byte
    ("0101010101010101", encode(changed(CS_UP, fPort=-1)), "fPort"),
    ("0101010101010101", encode(changed(CS_UP, confirmed="yes")), "confirmed"),
    ("0101010101010101", encode(changed(CS_UP, object=[1])), "object"),
    ("0101010101010101", encode(changed(CS_UP, rxInfo=[{"rssi": "loud"}])), "rxInfo.rssi"),
])
def test_chirpstack_malformed_uplink_names_the_field(topic_eui: str, payload: bytes, field: str) -> None:
    with pytest.raises(EventError) as caught:
        parse("chirpstack", cs_topic("up", topic_eui), payload)
    assert caught.value.reason.startswith(f"{field}:"), caught.value.reason


def test_chirpstack_malformed_status_names_the_field() -> None:
    with pytest.raises(EventError, match=r"^batteryLevel:"):
        parse("chirpstack", cs_topic("status"), encode(changed(CS_STATUS, batteryLevel=188.3)))
    with pytest.raises(EventError, match=r"^margin:"):
        parse("chirpstack", cs_topic("status"), encode(changed(CS_STATUS, margin=1.5)))


@pytest.mark.parametrize("topic", [
    "application/x/device/0101010101010101/command/down",  # our own downlink, echoed: not an event
    "application/x/device/0101010101010101/event",
    "v3/app1/devices/dev1/up",
])
def test_chirpstack_topic_that_is_not_an_event_topic(topic: str) -> None:
    with pytest.raises(EventError, match=r"^topic:"):
        parse("chirpstack", topic, encode(CS_UP))


# -- The Things Stack v3 fixtures (TTS_FORMATS) -------------------------------------------------

TTS_UP: dict[str, Any] = {
    "end_device_ids": {
        "device_id": "dev1",
        "application_ids": {"application_id": "app1"},
        "dev_eui": "0004A30B001C0530",
        "join_eui": "800000000000000C",
        "dev_addr": "00BCB929",
    },
    "correlation_ids": [
        "as:up:01E0WZGT6Y7657CPFPE5WEYDSQ",
        "gs:conn:01E0WDEC6T5T4XXBAX7S1VMFKE",
        "gs:uplink:01E0WZGSZWT07NE5TS2APTV1Z9",
        "ns:uplink:01E0WZGSZXZXZS8RFAWZX0F2FY",
        "rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01E0WZGSZXGE1KS577PFBWRJEE",
    ],
    "received_at": "2020-02-12T15:15:46.014773143Z",
    "uplink_message": {
        "session_key_id": "AXA50tHUGUucuzS/bCGMNw==",
        "f_cnt": 1,
        "frm_payload": "gkHe",
        "decoded_payload": {"temperature": 1.0, "luminosity": 0.64},
        "rx_metadata": [{
            "gateway_ids": {"gateway_id": "gtw1", "eui": "9C5C8E00001A05C4"},
            "time": "2020-02-12T15:15:45.787Z",
            "timestamp": 2463457000,
            "rssi": -35,
            "channel_rssi": -35,
            "snr": 5,
            "uplink_token": "ChIKEAoEZ3R3MRIInFyOAAAaBcQQ6L3Vlgk=",
            "channel_index": 2,
        }],
        "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
                     "coding_rate": "4/6", "frequency": "868300000"},
        "consumed_airtime": "0.056576s",
        "version_ids": {"brand_id": "the-things-products", "model_id": "the-things-uno",
                        "hardware_version": "1.0", "firmware_version": "quickstart", "band_id": "US_902_928"},
        "network_ids": {"net_id": "000013", "tenant_id": "tenant1", "cluster_id": "nam1"},
        "received_at": "2020-02-12T15:15:45.789585559Z",
    },
}
TTS_JOIN: dict[str, Any] = {
    "end_device_ids": {
        "device_id": "dev1",
        "application_ids": {"application_id": "app1"},
        "dev_eui": "0004A30B001C0530",
        "join_eui": "800000000000000C",
        "dev_addr": "01497ECC",
    },
    "correlation_ids": ["as:up:01E191YN5F2HMBQCBCVRF731VY", "gs:conn:01E191S6ZEWB630NTR45K5QN4Q"],
    "received_at": "2020-02-17T07:49:09.935284891Z",
    "join_accept": {"session_key_id": "AXBSH1Pk6Z0G166RlH16CQ==", "received_at": "2020-02-17T07:49:09.736532315Z"},
}
TTS_DOWN_ACK: dict[str, Any] = {
    "end_device_ids": {
        "device_id": "dev1",
        "application_ids": {"application_id": "app1"},
        "dev_eui": "0004A30B001C0530",
        "join_eui": "800000000000000C",
        "dev_addr": "00C30DFA",
    },
    "correlation_ids": ["as:downlink:01E19B99501X84X6CV471TVSZ1", "as:up:01E19B9J8ED6HZW5CC41KPGHVD"],
    "received_at": "2020-02-17T10:32:24.590413417Z",
    "downlink_ack": {
        "session_key_id": "AXBSp8v2brG0jqkri+sIkw==",
        "f_port": 15,
        "f_cnt": 1,
        "frm_payload": "vu8=",
        "confirmed": True,
        "priority": "NORMAL",
        "correlation_ids": ["as:downlink:01E19B99501X84X6CV471TVSZ1"],
    },
}
# TTS_MQTT's uplink example: no f_cnt (0 is omitted, TTS_FORMATS note) and, being older, no received_at
TTS_MQTT_UP: dict[str, Any] = {
    "end_device_ids": {"device_id": "dev1", "application_ids": {"application_id": "app1"},
                       "dev_eui": "4200000000000000", "join_eui": "4200000000000000", "dev_addr": "01DA1F15"},
    "correlation_ids": ["gs:conn:01D2CSNX7FJVKQPCVG612QF1TX", "as:up:01D2CV8HNGJ57G25BW0FCZNY07"],
    "uplink_message": {
        "session_key_id": "AWiZpAyXrAfEkUNkBljRoA==",
        "f_port": 15,
        "frm_payload": "VGVtcGVyYXR1cmUgPSAwLjA=",
        "rx_metadata": [{"gateway_ids": {"gateway_id": "eui-0242020000247803", "eui": "0242020000247803"},
                         "time": "2019-01-29T13:02:34.981Z", "timestamp": 1283325000, "rssi": -35, "snr": 5}],
    },
}


def tts_topic(event: str, device: str = "dev1", owner: str = "app1@tenant1") -> str:
    # TTS_MQTT: v3/{application id}@{tenant id}/devices/{device id}/{event}
    return f"v3/{owner}/devices/{device}/{event}"


# -- The Things Stack: each event type ----------------------------------------------------------


def test_tts_uplink_from_the_data_formats_example() -> None:
    event = parse("tts", tts_topic("up"), encode(TTS_UP))
    # every value below is read off the TTS_FORMATS uplink example (f_port is absent there)
    assert event == Uplink(
        dev_eui="0004a30b001c0530",
        received_at=datetime(2020, 2, 12, 15, 15, 46, 14773, tzinfo=UTC),
        f_cnt=1,
        f_port=None,
        data=b"\x82\x41\xde",  # "gkHe"
        decoded={"temperature": 1.0, "luminosity": 0.64},
        dedup_id="as:up:01E0WZGT6Y7657CPFPE5WEYDSQ",
        dev_addr="00bcb929",
        session="AXA50tHUGUucuzS/bCGMNw==",
        device_name="dev1",
        application_id="app1",
        profile="the-things-products/the-things-uno",
        confirmed=False,
        gateways=1,
        rssi=-35.0,
        snr=5.0,
    )


def test_tts_uplink_from_the_mqtt_page_example() -> None:
    # the older TTS_MQTT example has no top-level received_at: without any time it is malformed
    with pytest.raises(EventError, match=r"^received_at:"):
        parse("tts", tts_topic("up", owner="app1"), encode(TTS_MQTT_UP))
    body = copy.deepcopy(TTS_MQTT_UP)
    body["uplink_message"]["received_at"] = "2019-01-29T13:02:35.1Z"  # the Network Server's time, when alone
    event = parse("tts", tts_topic("up", owner="app1"), encode(body))
    assert isinstance(event, Uplink)
    assert event.f_cnt == 0  # omitted because 0 (TTS_FORMATS note)
    assert event.f_port == 15
    assert event.data == b"Temperature = 0.0"  # base64 of the example's frm_payload
    assert event.received_at == datetime(2019, 1, 29, 13, 2, 35, 100000, tzinfo=UTC)
    assert event.dedup_id == "as:up:01D2CV8HNGJ57G25BW0FCZNY07"  # the "as:up:" id, wherever it stands


def test_tts_confirmed_uplink_without_a_profile() -> None:
    body = copy.deepcopy(TTS_UP)
    body["uplink_message"]["confirmed"] = True  # TTS API ApplicationUplink.confirmed
    del body["uplink_message"]["version_ids"]
    body["correlation_ids"] = ["gs:conn:01E0WDEC6T5T4XXBAX7S1VMFKE"]
    event = parse("tts", tts_topic("up"), encode(body))
    assert isinstance(event, Uplink)
    assert (event.confirmed, event.profile, event.dedup_id) == (True, None, None)


def test_tts_join_from_the_data_formats_example() -> None:
    event = parse("tts", tts_topic("join"), encode(TTS_JOIN))
    assert event == JoinEvent(dev_eui="0004a30b001c0530",
                              received_at=datetime(2020, 2, 17, 7, 49, 9, 935284, tzinfo=UTC),
                              dev_addr="01497ecc")  # TTS_FORMATS join example


@pytest.mark.parametrize(("event", "key", "acknowledged"), [
    ("down/ack", "downlink_ack", True),     # TTS_FORMATS: "downlink `ack`, `nack`, `queued` and `sent` events"
    ("down/nack", "downlink_nack", False),
    ("down/sent", "downlink_sent", None),   # sent to a gateway: nothing known of the device yet
])
def test_tts_downlink_events(event: str, key: str, acknowledged: bool | None) -> None:
    body = copy.deepcopy(TTS_DOWN_ACK)
    body[key] = body.pop("downlink_ack")
    parsed = parse("tts", tts_topic(event), encode(body))
    assert parsed == DownlinkAck(dev_eui="0004a30b001c0530",
                                 received_at=datetime(2020, 2, 17, 10, 32, 24, 590413, tzinfo=UTC),
                                 acknowledged=acknowledged, reference="as:downlink:01E19B99501X84X6CV471TVSZ1")


def test_tts_downlink_ack_keeps_our_own_correlation_id() -> None:
    # TTS_MQTT: a downlink pushed with correlation_ids ["my-correlation-id"] comes back with it first
    body = copy.deepcopy(TTS_DOWN_ACK)
    body["downlink_ack"]["correlation_ids"] = ["my-correlation-id", "as:downlink:01E19B99501X84X6CV471TVSZ1"]
    event = parse("tts", tts_topic("down/ack"), encode(body))
    assert isinstance(event, DownlinkAck)
    assert event.reference == "my-correlation-id"


@pytest.mark.parametrize("event", ["down/queued", "down/failed", "service/data", "location/solved", "down/push"])
def test_tts_events_we_ignore(event: str) -> None:
    # TTS_MQTT lists these topics; the brief: knowingly ignored -> None
    assert parse("tts", tts_topic(event), encode(TTS_DOWN_ACK)) is None


# -- The Things Stack: malformed messages -------------------------------------------------------


def tts_up(**message: Any) -> bytes:
    body = copy.deepcopy(TTS_UP)
    for key, value in message.items():
        if value is ...:
            body["uplink_message"].pop(key, None)
        else:
            body["uplink_message"][key] = value
    return encode(body)


def without_times(body: dict[str, Any], inner: str) -> bytes:
    """No received_at at the top nor in the inner message."""
    out = changed(body, received_at=...)
    out[inner].pop("received_at", None)
    return encode(out)


def tts_ids(**ids: Any) -> bytes:
    body = copy.deepcopy(TTS_UP)
    body["end_device_ids"].update(ids)
    return encode(body)


@pytest.mark.parametrize(("topic", "payload", "field"), [
    (tts_topic("up"), b"", "payload"),
    (tts_topic("up"), encode(changed(TTS_UP, end_device_ids=...)), "end_device_ids"),
    (tts_topic("up"), tts_ids(dev_eui=None), "end_device_ids.dev_eui"),  # a device without a DevEUI (ABP 1.0)
    (tts_topic("up"), tts_ids(dev_eui="0004A30B001C05"), "end_device_ids.dev_eui"),
    (tts_topic("up", device="dev2"), encode(TTS_UP), "end_device_ids.device_id"),  # TTS topics carry the device id
    (tts_topic("up"), encode(changed(TTS_UP, uplink_message=...)), "uplink_message"),
    (tts_topic("up"), tts_up(frm_payload="gkH"), "uplink_message.frm_payload"),
    (tts_topic("up"), tts_up(f_cnt=-5), "uplink_message.f_cnt"),
    (tts_topic("up"), tts_up(f_port=300), "uplink_message.f_port"),
    (tts_topic("up"), without_times(TTS_UP, "uplink_message"), "received_at"),
    (tts_topic("up"), encode(changed(TTS_UP, received_at="2020-02-30T00:00:00Z")), "received_at"),
    (tts_topic("join"), without_times(TTS_JOIN, "join_accept"), "received_at"),
    ("v3/app1/up", encode(TTS_UP), "topic"),
    ("application/app1/devices/dev1/up", encode(TTS_UP), "topic"),
])
def test_tts_malformed_message_names_the_field(topic: str, payload: bytes, field: str) -> None:
    with pytest.raises(EventError) as caught:
        parse("tts", topic, payload)
    assert caught.value.reason.startswith(f"{field}:"), caught.value.reason


# -- topic filters ------------------------------------------------------------------------------


def test_chirpstack_topic_filters() -> None:
    # CS_MQTT: application/APPLICATION_ID/device/DEV_EUI/event/EVENT; ChirpStack topics have no tenant
    assert topic_filters("chirpstack") == [f"application/+/device/+/event/{e}"
                                           for e in ("up", "status", "join", "ack", "txack")]
    assert topic_filters("chirpstack", CS_APP, tenant="ignored")[0] == f"application/{CS_APP}/device/+/event/up"


def test_tts_topic_filters() -> None:
    # TTS_MQTT: v3/{application id}@{tenant id}/devices/{device id}/...; no "@tenant" on the open-source edition
    events = ("up", "join", "down/ack", "down/nack", "down/sent")
    assert topic_filters("tts", "app1", tenant="tenant1") == [f"v3/app1@tenant1/devices/+/{e}" for e in events]
    assert topic_filters("tts", "app1") == [f"v3/app1/devices/+/{e}" for e in events]
    # MQTT 3.1.1 §4.7.1.3: "+" must occupy an entire level, so "+@tenant1" would be no filter at all
    assert topic_filters("tts", tenant="tenant1")[0] == "v3/+/devices/+/up"


@pytest.mark.parametrize("application", ["", "a/b", "#", "app+"])
def test_topic_filters_refuse_what_is_not_one_topic_level(application: str) -> None:
    with pytest.raises(EventError, match=r"^application:"):
        topic_filters("chirpstack", application)


def test_every_filtered_topic_parses() -> None:
    # each filter, with its wildcards filled in, names a topic `parse` reads (and does not ignore)
    for topic_filter in topic_filters("chirpstack", CS_APP):
        topic = topic_filter.replace("+", "0101010101010101")
        event = topic.rsplit("/", 1)[1]
        body = {"up": CS_UP, "status": CS_STATUS, "join": CS_JOIN, "ack": CS_ACK, "txack": CS_TXACK}[event]
        assert parse("chirpstack", topic, encode(body)) is not None
    for topic_filter in topic_filters("tts", "app1", tenant="tenant1"):
        topic = topic_filter.replace("+", "dev1")
        event = topic.split("/", 4)[4]
        body = {"up": TTS_UP, "join": TTS_JOIN}.get(event, TTS_DOWN_ACK)
        assert parse("tts", topic, encode(body)) is not None


# -- downlinks ----------------------------------------------------------------------------------


def test_chirpstack_downlink_message() -> None:
    topic, payload = downlink_message("chirpstack", application=CS_APP, dev_eui="0102030405060708",
                                      device_name=None, f_port=10, data=b"\xbe\xef", confirmed=True)
    # CS_MQTT "Scheduling a downlink": the topic, and devEui/confirmed/fPort/data (base64) in the payload
    assert topic == f"application/{CS_APP}/device/0102030405060708/command/down"
    body = json.loads(payload)
    assert body == {"devEui": "0102030405060708", "confirmed": True, "fPort": 10, "data": "vu8="}
    assert base64.b64decode(body["data"]) == b"\xbe\xef"


def test_chirpstack_downlink_normalises_the_dev_eui() -> None:
    topic, payload = downlink_message("chirpstack", application="app", dev_eui="0016C001F000175A",
                                      device_name=None, f_port=1, data=b"", confirmed=False)
    # CS_MQTT: the payload's devEui "must match the DEV_EUI of the MQTT topic"
    assert topic.split("/")[3] == json.loads(payload)["devEui"] == "0016c001f000175a"


def test_tts_downlink_message() -> None:
    topic, payload = downlink_message("tts", application="app1", dev_eui="0004A30B001C0530", device_name="dev1",
                                      f_port=15, data=b"\xbe\xef", confirmed=False, tenant="tenant1")
    # TTS_MQTT "Publishing Downlink Traffic": v3/app1@tenant1/devices/dev1/down/push, BE EF on FPort 15 is "vu8="
    assert topic == "v3/app1@tenant1/devices/dev1/down/push"
    body = json.loads(payload)
    assert body == {"downlinks": [{"f_port": 15, "frm_payload": "vu8=", "priority": "NORMAL", "confirmed": False}]}
    assert base64.b64decode(body["downlinks"][0]["frm_payload"]) == b"\xbe\xef"
    topic, _ = downlink_message("tts", application="app1", dev_eui="0004A30B001C0530", device_name="dev1",
                                f_port=15, data=b"", confirmed=True)
    assert topic == "v3/app1/devices/dev1/down/push"  # the open-source edition: no tenant


def test_tts_downlink_needs_the_device_id() -> None:
    with pytest.raises(EventError, match=r"^device_name:"):
        downlink_message("tts", application="app1", dev_eui="0004a30b001c0530", device_name=None, f_port=15,
                         data=b"\x01", confirmed=False)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"f_port": 0}, "f_port"),      # CS_PROTO DownlinkCommand: "FPort (must be > 0)"; 0 carries MAC commands
    ({"f_port": 224}, "f_port"),    # LoRaWAN 1.0.x: 224 is the MAC test port, 225..255 reserved
    ({"dev_eui": "0102"}, "dev_eui"),
    ({"application": "+"}, "application"),  # a wildcard is no place to publish to
    ({"device_name": "a/b"}, "device_name"),
])
def test_downlink_refuses_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"application": "app1", "dev_eui": "0102030405060708", "device_name": "dev1",
                            "f_port": 15, "data": b"\x01", "confirmed": False} | kwargs
    kinds: tuple[ServerKind, ...] = ("chirpstack", "tts")
    for kind in kinds:
        if field == "device_name" and kind == "chirpstack":
            continue  # ChirpStack addresses by DevEUI and never reads the device name
        with pytest.raises(EventError, match=rf"^{field}:"):
            downlink_message(kind, **args)
