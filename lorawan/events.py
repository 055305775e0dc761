"""The network servers' MQTT messages as typed events: ChirpStack v4 and The Things Stack v3.

Pure: topic and payload bytes in, an `Event` (or None for a kind we knowingly ignore) out.
A message that claims to be one of ours but cannot be read raises `EventError(reason)`,
the reason short and naming the field.

ChirpStack v4 publishes the protobuf JSON mapping of `integration.proto` (camelCase; fields
at their proto3 default are omitted: an absent `fCnt` is 0, `confirmed` false) on
`application/{application id}/device/{DevEUI}/event/{up,status,join,ack,txack,log,location,
integration}`. The Things Stack v3 publishes its own JSON (snake_case, empty fields omitted)
on `v3/{application id}[@{tenant id}]/devices/{device id}/{up,join,down/...,service/data}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeGuard

import msgspec

from lorawan.errors import EventError

__all__ = ["DownlinkAck", "Event", "JoinEvent", "ServerKind", "StatusEvent", "Uplink", "downlink_message", "parse",
           "topic_filters"]

ServerKind = Literal["chirpstack", "tts"]

MAX_F_CNT = 2**32 - 1  # both servers report the full 32-bit counter


class Uplink(msgspec.Struct, frozen=True):
    dev_eui: str                # 16 lower-case hex digits, always normalised
    received_at: datetime       # the network server's time: ChirpStack `time`, TTS `received_at` (tz-aware UTC)
    f_cnt: int
    f_port: int | None          # None when absent (a MAC-only frame)
    data: bytes                 # frm_payload decoded from base64 (b"" when absent)
    decoded: dict[str, Any] | None   # ChirpStack `object`, TTS `uplink_message.decoded_payload`, when present
    dedup_id: str | None        # ChirpStack `deduplicationId`; TTS: first of `correlation_ids` starting "as:up:"
    dev_addr: str | None        # ChirpStack `devAddr`; TTS `end_device_ids.dev_addr` (lower-case hex)
    session: str | None         # TTS `uplink_message.session_key_id`; ChirpStack: None
    device_name: str | None     # ChirpStack deviceInfo.deviceName; TTS end_device_ids.device_id
    application_id: str | None  # ChirpStack deviceInfo.applicationId; TTS end_device_ids.application_ids...
    profile: str | None         # ChirpStack deviceInfo.deviceProfileName; TTS version_ids "brand/model"
    confirmed: bool
    gateways: int               # len(rxInfo) / len(rx_metadata)
    rssi: float | None          # best (max) rssi over the gateways
    snr: float | None           # best snr


class StatusEvent(msgspec.Struct, frozen=True):
    """ChirpStack `.../event/status` (DevStatusAns). TTS has none over MQTT: it reports the battery in
    uplinks' `last_battery_percentage`, which is left to the users of `Uplink`."""

    dev_eui: str
    received_at: datetime
    battery_pct: float | None   # batteryLevel (0-100); None when batteryLevelUnavailable or externalPowerSource
    external_power: bool
    margin: int | None


class JoinEvent(msgspec.Struct, frozen=True):
    """ChirpStack `.../event/join`; TTS `.../join`."""

    dev_eui: str
    received_at: datetime
    dev_addr: str | None


class DownlinkAck(msgspec.Struct, frozen=True):
    """ChirpStack `.../event/ack` (acknowledged true/false) and `.../event/txack` (a gateway took it: None);
    TTS `.../down/ack` (True), `.../down/nack` (False), `.../down/sent` (None)."""

    dev_eui: str
    received_at: datetime
    acknowledged: bool | None
    reference: str | None       # ChirpStack queueItemId; TTS the downlink's correlation id


Event = Uplink | StatusEvent | JoinEvent | DownlinkAck

CHIRPSTACK_EVENTS = ("up", "status", "join", "ack", "txack")
CHIRPSTACK_IGNORED = frozenset({"log", "location", "integration"})
TTS_EVENTS = ("up", "join", "down/ack", "down/nack", "down/sent")
TTS_IGNORED = frozenset({"down/queued", "down/failed", "service/data", "location/solved", "down/push",
                         "down/replace"})
TTS_ACKS: dict[str, bool | None] = {"down/ack": True, "down/nack": False, "down/sent": None}

_EUI = re.compile(r"[0-9a-fA-F]{16}")
_FRACTION = re.compile(r"\.(\d+)")


# -- reading ------------------------------------------------------------------------------------


def parse(kind: ServerKind, topic: str, payload: bytes) -> Event | None:
    """The event in one MQTT message, or None for an event type we knowingly ignore."""
    if kind == "chirpstack":
        return _parse_chirpstack(topic, payload)
    if kind == "tts":
        return _parse_tts(topic, payload)
    raise ValueError(f"unknown network server kind {kind!r}")


def _parse_chirpstack(topic: str, payload: bytes) -> Event | None:
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "application" or parts[2] != "device" or parts[4] != "event":
        raise EventError(f"topic: not a ChirpStack event topic: {topic!r}")
    event = parts[5]
    if event in CHIRPSTACK_IGNORED or event not in CHIRPSTACK_EVENTS:
        return None  # log, location, integration, or a newer server's event type: not ours to read
    if event == "up":
        fast = _chirpstack_up_fast(parts[3], payload)
        if fast is not None:
            return fast
    body = _json_object(payload)
    info = _mapping(body, "deviceInfo")
    dev_eui = _dev_eui(info.get("devEui"), "deviceInfo.devEui")
    if _dev_eui(parts[3], "topic DevEUI") != dev_eui:
        raise EventError(f"deviceInfo.devEui: {dev_eui} differs from the topic's {parts[3]}")
    at = _timestamp(body.get("time"), "time")

    if event == "up":
        rx = _list(body, "rxInfo")
        return Uplink(
            dev_eui=dev_eui,
            received_at=at,
            f_cnt=_f_cnt(body.get("fCnt", 0), "fCnt"),
            f_port=_f_port(body.get("fPort"), "fPort"),
            data=_base64(body.get("data"), "data"),
            decoded=_optional_object(body, "object"),
            dedup_id=_text(body, "deduplicationId"),
            dev_addr=_dev_addr(body, "devAddr"),
            session=None,
            device_name=_text(info, "deviceName"),
            application_id=_text(info, "applicationId"),
            profile=_text(info, "deviceProfileName"),
            confirmed=_flag(body, "confirmed"),
            gateways=len(rx),
            rssi=_best(rx, "rssi", "rxInfo"),
            snr=_best(rx, "snr", "rxInfo"),
        )
    if event == "status":
        # proto3 JSON omits zeros: an absent margin or batteryLevel is 0, not unknown
        external = _flag(body, "externalPowerSource")
        unavailable = _flag(body, "batteryLevelUnavailable")
        level = _number(body.get("batteryLevel", 0), "batteryLevel")
        if not 0 <= level <= 100:
            raise EventError(f"batteryLevel: {level} is not a percentage")
        margin = body.get("margin", 0)
        if not _is_int(margin):
            raise EventError("margin: not an integer")
        return StatusEvent(dev_eui=dev_eui, received_at=at,
                           battery_pct=None if external or unavailable else float(level),
                           external_power=external, margin=margin)
    if event == "join":
        return JoinEvent(dev_eui=dev_eui, received_at=at, dev_addr=_dev_addr(body, "devAddr"))
    acknowledged = _flag(body, "acknowledged") if event == "ack" else None
    return DownlinkAck(dev_eui=dev_eui, received_at=at, acknowledged=acknowledged,
                       reference=_text(body, "queueItemId"))


# The hot path: a well-formed ChirpStack uplink decoded by msgspec into these (C, not a field reader per
# field); anything it does not take is read again by the field readers below, which name what is wrong.
# The types are as strict as those readers (no null where they refuse one, no bool for a number).
class _CsDevice(msgspec.Struct):
    devEui: Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{16}$")]
    deviceName: str = ""
    applicationId: str = ""
    deviceProfileName: str = ""


class _CsGateway(msgspec.Struct):
    rssi: float | msgspec.UnsetType = msgspec.UNSET
    snr: float | msgspec.UnsetType = msgspec.UNSET


class _CsUp(msgspec.Struct):
    deviceInfo: _CsDevice
    time: str
    fCnt: Annotated[int, msgspec.Meta(ge=0, le=MAX_F_CNT)] = 0
    fPort: Annotated[int, msgspec.Meta(ge=0, le=255)] | None = None
    data: str | None = None
    object: dict[str, Any] | None = None
    deduplicationId: str = ""
    devAddr: str = ""
    confirmed: bool = False
    rxInfo: list[_CsGateway] = []


_cs_up = msgspec.json.Decoder(_CsUp)


def _chirpstack_up_fast(topic_eui: str, payload: bytes) -> Uplink | None:
    """The uplink, or None for the field readers to look at (and say what is wrong)."""
    try:
        up = _cs_up.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    info = up.deviceInfo
    dev_eui = info.devEui.lower()
    if dev_eui != topic_eui.lower():  # (the payload's is 16 hex digits: the decoder checked)
        return None
    rssi = snr = None
    for gateway in up.rxInfo:
        if gateway.rssi is not msgspec.UNSET and (rssi is None or gateway.rssi > rssi):
            rssi = gateway.rssi
        if gateway.snr is not msgspec.UNSET and (snr is None or gateway.snr > snr):
            snr = gateway.snr
    return Uplink(
        dev_eui, _timestamp(up.time, "time"), up.fCnt, up.fPort, _base64(up.data, "data"), up.object,
        up.deduplicationId or None, up.devAddr.lower() or None, None, info.deviceName or None,
        info.applicationId or None, info.deviceProfileName or None, up.confirmed, len(up.rxInfo),
        None if rssi is None else float(rssi), None if snr is None else float(snr))


def _parse_tts(topic: str, payload: bytes) -> Event | None:
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "v3" or parts[2] != "devices" or not parts[1] or not parts[3]:
        raise EventError(f"topic: not a The Things Stack device topic: {topic!r}")
    event = "/".join(parts[4:])
    if event in TTS_IGNORED or event not in TTS_EVENTS:
        return None  # queued, failed, service data, location, our own push echoed, or newer
    body = _json_object(payload)
    ids = _mapping(body, "end_device_ids")
    dev_eui = _dev_eui(ids.get("dev_eui"), "end_device_ids.dev_eui")
    device_id = _text(ids, "device_id")
    if device_id is not None and device_id != parts[3]:
        raise EventError(f"end_device_ids.device_id: {device_id!r} differs from the topic's {parts[3]!r}")
    correlation_ids = _strings(body, "correlation_ids")

    if event == "up":
        message = _mapping(body, "uplink_message")
        at = _tts_time(body, message)
        rx = _list(message, "rx_metadata")
        return Uplink(
            dev_eui=dev_eui,
            received_at=at,
            f_cnt=_f_cnt(message.get("f_cnt", 0), "uplink_message.f_cnt"),
            f_port=_f_port(message.get("f_port"), "uplink_message.f_port"),
            data=_base64(message.get("frm_payload"), "uplink_message.frm_payload"),
            decoded=_optional_object(message, "decoded_payload"),
            dedup_id=next((c for c in correlation_ids if c.startswith("as:up:")), None),
            dev_addr=_dev_addr(ids, "dev_addr"),
            session=_text(message, "session_key_id"),
            device_name=device_id or parts[3],
            application_id=_text(_optional_mapping(ids, "application_ids"), "application_id"),
            profile=_tts_profile(message),
            confirmed=_flag(message, "confirmed"),
            gateways=len(rx),
            rssi=_best(rx, "rssi", "uplink_message.rx_metadata"),
            snr=_best(rx, "snr", "uplink_message.rx_metadata"),
        )
    if event == "join":
        return JoinEvent(dev_eui=dev_eui, received_at=_tts_time(body, _optional_mapping(body, "join_accept")),
                         dev_addr=_dev_addr(ids, "dev_addr"))
    key = "downlink_" + event.removeprefix("down/")
    downlink = _optional_mapping(body, key)
    own_ids = _strings(downlink, "correlation_ids")
    reference = own_ids[0] if own_ids else next((c for c in correlation_ids if c.startswith("as:downlink:")), None)
    return DownlinkAck(dev_eui=dev_eui, received_at=_tts_time(body, downlink), acknowledged=TTS_ACKS[event],
                       reference=reference)


def _tts_time(body: Mapping[str, Any], inner: Mapping[str, Any]) -> datetime:
    """The top-level `received_at`; the inner message's (the Network Server's) when an older server left it out."""
    if "received_at" in body:
        return _timestamp(body["received_at"], "received_at")
    return _timestamp(inner.get("received_at"), "received_at")


def _tts_profile(message: Mapping[str, Any]) -> str | None:
    versions = _optional_mapping(message, "version_ids")
    brand, model = _text(versions, "brand_id"), _text(versions, "model_id")
    return f"{brand}/{model}" if brand and model else None


# -- field readers: each names the field in its EventError --------------------------------------


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise EventError(f"payload: not JSON ({exc.__class__.__name__})") from None
    if not isinstance(body, dict):
        raise EventError("payload: not a JSON object")
    return body


def _mapping(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise EventError(f"{key}: missing or not an object")
    return value


def _optional_mapping(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key, {})
    if not isinstance(value, dict):
        raise EventError(f"{key}: not an object")
    return value


def _optional_object(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise EventError(f"{key}: not an object")
    return value


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise EventError(f"{key}: not a list")
    return value


def _strings(body: Mapping[str, Any], key: str) -> list[str]:
    return [item for item in _list(body, key) if isinstance(item, str)]


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EventError(f"{key}: not a string")
    return value


def _flag(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise EventError(f"{key}: not true or false")
    return value


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError(f"{field}: not a number")
    return float(value)


def _dev_eui(value: object, field: str) -> str:
    if value is None or value == "":
        raise EventError(f"{field}: missing")
    if not isinstance(value, str) or not _EUI.fullmatch(value):
        raise EventError(f"{field}: {value!r} is not 16 hex digits")
    return value.lower()


def _dev_addr(body: Mapping[str, Any], key: str) -> str | None:
    """Lower-case, like the DevEUI: ChirpStack writes "00189440", The Things Stack "00BCB929"."""
    value = _text(body, key)
    return None if value is None else value.lower()


def _f_cnt(value: object, field: str) -> int:
    if not _is_int(value):
        raise EventError(f"{field}: not an integer")
    if value < 0:
        raise EventError(f"{field}: {value} is negative")
    if value > MAX_F_CNT:
        raise EventError(f"{field}: {value} is beyond 32 bits")
    return value


def _f_port(value: object, field: str) -> int | None:
    if value is None:
        return None
    if not _is_int(value):
        raise EventError(f"{field}: not an integer")
    if not 0 <= value <= 255:
        raise EventError(f"{field}: {value} is outside 0..255")
    return value


def _base64(value: object, field: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise EventError(f"{field}: not a base64 string")
    # the protobuf JSON mapping accepts the URL-safe alphabet as well as the standard one
    altchars = b"-_" if ("-" in value or "_" in value) else None
    try:
        return base64.b64decode(value, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise EventError(f"{field}: not valid base64") from None


def _best(rx: list[Any], key: str, field: str) -> float | None:
    values = []
    for gateway in rx:
        if not isinstance(gateway, dict):
            raise EventError(f"{field}: an entry is not an object")
        if key in gateway:
            values.append(_number(gateway[key], f"{field}.{key}"))
    return max(values) if values else None


def _timestamp(value: object, field: str) -> datetime:
    """RFC 3339 to an aware UTC datetime; nanoseconds are cut to microseconds, 'Z' is UTC."""
    if value is None or value == "":
        raise EventError(f"{field}: missing")
    if not isinstance(value, str):
        raise EventError(f"{field}: not a timestamp string")
    text = value.strip()
    try:  # Python 3.11 reads 'Z' and any number of fractional digits (cut to microseconds) itself
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _normalised(text, value, field)
    if parsed.tzinfo is None:
        raise EventError(f"{field}: {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _normalised(text: str, value: str, field: str) -> datetime:
    """A time Python's own reader does not take as written: lower-case 'z', a fraction cut to 6 digits."""
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise EventError(f"{field}: {value!r} is not an RFC 3339 time") from None


# -- subscribing and sending --------------------------------------------------------------------


def topic_filters(kind: ServerKind, application: str = "+", tenant: str | None = None) -> list[str]:
    """The MQTT filters for the events `parse` reads, one per event type.

    ChirpStack v4 has no tenant in its topics. For The Things Stack, "+" as the application is
    valid MQTT, but its MQTT server authenticates per application (username `app@tenant`), so a
    real subscription names one application; `tenant` is None on the open-source edition.
    """
    _segment(application, "application", wildcard=True)
    if kind == "chirpstack":
        return [f"application/{application}/device/+/event/{event}" for event in CHIRPSTACK_EVENTS]
    if kind == "tts":
        owner = _tts_owner(application, tenant, wildcard=True)
        return [f"v3/{owner}/devices/+/{event}" for event in TTS_EVENTS]
    raise ValueError(f"unknown network server kind {kind!r}")


def downlink_message(kind: ServerKind, *, application: str, dev_eui: str, device_name: str | None, f_port: int,
                     data: bytes, confirmed: bool, tenant: str | None = None,
                     reference: str | None = None) -> tuple[str, bytes]:
    """The topic and JSON payload that queue one downlink (an application port, 1..223: LoRaWAN 1.0.x "Port field").

    `reference` comes back in the server's acks (DownlinkAck.reference): ChirpStack's queue item `id`
    (a UUID), The Things Stack's correlation id `cityops:<reference>`."""
    _segment(application, "application", wildcard=False)
    eui = _dev_eui(dev_eui, "dev_eui")
    if not _is_int(f_port) or not 1 <= f_port <= 223:
        raise EventError(f"f_port: {f_port!r} is not an application port (1..223)")
    frm_payload = base64.b64encode(data).decode("ascii")
    if kind == "chirpstack":
        topic = f"application/{application}/device/{eui}/command/down"
        body: dict[str, Any] = {"devEui": eui, "confirmed": confirmed, "fPort": f_port, "data": frm_payload}
        if reference is not None:
            body["id"] = reference
    elif kind == "tts":
        if device_name is None:
            raise EventError("device_name: The Things Stack addresses a downlink by device id")
        _segment(device_name, "device_name", wildcard=False)
        topic = f"v3/{_tts_owner(application, tenant, wildcard=False)}/devices/{device_name}/down/push"
        downlink: dict[str, Any] = {"f_port": f_port, "frm_payload": frm_payload, "priority": "NORMAL",
                                    "confirmed": confirmed}
        if reference is not None:
            downlink["correlation_ids"] = [f"cityops:{reference}"]
        body = {"downlinks": [downlink]}
    else:
        raise ValueError(f"unknown network server kind {kind!r}")
    return topic, json.dumps(body, separators=(",", ":")).encode()


def _tts_owner(application: str, tenant: str | None, *, wildcard: bool) -> str:
    if tenant is None or (wildcard and application == "+"):
        return application  # "+@tenant" is no MQTT filter: "+" has to be a whole level
    _segment(tenant, "tenant", wildcard=False)
    return f"{application}@{tenant}"


def _segment(value: str, field: str, *, wildcard: bool) -> None:
    """One topic level: not empty, no '/', no '#', and '+' only alone where a filter may have it."""
    if not value or "/" in value or "#" in value or ("+" in value and not (wildcard and value == "+")):
        raise EventError(f"{field}: {value!r} is not one MQTT topic level")
