"""The MQTT contract between devices and the platform: topics and versioned payloads.

One module for the agent (firmware/) and ingest alike. It depends only on msgspec and
the standard library, so the agent can carry it without the platform's other packages.

Topics (README.md, "The contract between devices and the platform"; docs/science.md#mqtt-topics):
    cityops/v1/devices/{device_id}/telemetry   device -> platform, QoS 1, a TelemetryBatch
    cityops/v1/devices/{device_id}/status      retained; "online", or "offline" as Last Will
    cityops/v1/devices/{device_id}/config      retained, platform -> device, a DeviceConfig
    cityops/v1/devices/{device_id}/receipts    platform -> device, QoS 0 (contract/receipts.py)

A telemetry message is a batch: the device id, a per-device sequence number, firmware
version, battery, and readings each with its own UTC timestamp (the spool replays hours
of backlog in one message). Version 2 is version 1 plus a request for receipts
(contract/receipts.py); the platform reads both. Decoding checks structure and types for the whole message;
`reading_problem` checks each reading's values, so one bad reading can be set aside
while the rest of its batch is accepted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import msgspec

SCHEMA_VERSION = 2  # what this agent sends: readings deleted from its spool on a receipt
SUPPORTED_VERSIONS = (1, 2)  # what the platform reads; 1 is deleted on the broker's PUBACK
CONFIG_VERSION = 1
TOPIC_ROOT = "cityops/v1/devices"
TELEMETRY_FILTER = f"{TOPIC_ROOT}/+/telemetry"
STATUS_FILTER = f"{TOPIC_ROOT}/+/status"
DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")  # the same rule as the devices table

Channel = Literal["telemetry", "status", "config", "receipts"]
CHANNELS = ("telemetry", "status", "config", "receipts")
SurfaceState = Literal["dry", "damp", "wet", "ice"]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]

# Limits on a message (issue 18): the agent sends at most 200 readings a message
# (firmware/sender.py batch_max), so 1,000 leaves room; strings are short by nature.
MAX_READINGS = 1_000
MAX_TEXT = 64  # device_id (the topic rule) and fw
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]

# Physical plausibility: outside these a value is a fault, not a reading.
TEMPERATURE_RANGE_C = (-50.0, 80.0)
RH_RANGE_PCT = (0.0, 100.0)
DISTANCE_RANGE_MM = (0.0, 10_000.0)
TILT_RANGE_DEG = (0.0, 180.0)


class TelemetryError(ValueError):
    """A topic or payload that does not follow the contract; `reason` says how."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- topics -------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceTopic:
    device_id: str
    channel: Channel

    def __post_init__(self) -> None:
        if not DEVICE_ID.match(self.device_id):
            raise TelemetryError(f"invalid device id {self.device_id!r}")

    def __str__(self) -> str:
        return f"{TOPIC_ROOT}/{self.device_id}/{self.channel}"

    @classmethod
    def parse(cls, topic: str) -> DeviceTopic:
        prefix = TOPIC_ROOT + "/"
        parts = topic[len(prefix):].split("/") if topic.startswith(prefix) else []
        if len(parts) != 2 or parts[1] not in CHANNELS:
            raise TelemetryError(f"not a device topic: {topic!r}")
        return cls(parts[0], parts[1])  # type: ignore[arg-type]


def telemetry_topic(device_id: str) -> str:
    return str(DeviceTopic(device_id, "telemetry"))


def status_topic(device_id: str) -> str:
    return str(DeviceTopic(device_id, "status"))


def config_topic(device_id: str) -> str:
    return str(DeviceTopic(device_id, "config"))


def receipts_topic(device_id: str) -> str:
    return str(DeviceTopic(device_id, "receipts"))


# --- readings -----------------------------------------------------------------------

class FrogReading(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A home's damp box: air temperature and relative humidity."""

    ts: UtcTime
    air_temp_c: float
    rh_pct: float
    unsynced: bool = False  # the device clock was not yet synchronised (NTP/GPS)


class RoadReading(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A road sensor; a gritter's mobile sensor adds its position."""

    ts: UtcTime
    surface_temp_c: float | None = None
    air_temp_c: float | None = None
    surface_state: SurfaceState | None = None
    lat: float | None = None
    lon: float | None = None
    rh_pct: float | None = None  # the air's relative humidity, for the frost point (optional)
    unsynced: bool = False


class BinReading(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A bin: ultrasonic distance to the contents (or a fill fraction), temperature, tilt."""

    ts: UtcTime
    distance_mm: float | None = None
    fill_fraction: float | None = None
    temp_c: float | None = None
    tilt_deg: float | None = None
    unsynced: bool = False


Reading = FrogReading | RoadReading | BinReading


class _Batch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    v: int
    device_id: Text
    seq: int
    fw: Text
    battery_v: float | None = None


class FrogBatch(_Batch, frozen=True, tag="frog"):
    readings: Annotated[list[FrogReading], msgspec.Meta(max_length=MAX_READINGS)] = []


class RoadBatch(_Batch, frozen=True, tag="road"):
    readings: Annotated[list[RoadReading], msgspec.Meta(max_length=MAX_READINGS)] = []


class BinBatch(_Batch, frozen=True, tag="bin"):
    readings: Annotated[list[BinReading], msgspec.Meta(max_length=MAX_READINGS)] = []


TelemetryBatch = FrogBatch | RoadBatch | BinBatch
Kind = Literal["frog", "road", "bin"]
BATCH_TYPES: dict[str, type[FrogBatch] | type[RoadBatch] | type[BinBatch]] = {
    "frog": FrogBatch, "road": RoadBatch, "bin": BinBatch}

_decoder = msgspec.json.Decoder(TelemetryBatch)
_encoder = msgspec.json.Encoder()


def batch_kind(batch: TelemetryBatch) -> Kind:
    return batch.__struct_config__.tag  # type: ignore[return-value]


def decode_batch(payload: bytes) -> TelemetryBatch:
    """Structure and types of a whole message; TelemetryError with the reason otherwise."""
    try:
        batch = _decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a key is the latter
        raise TelemetryError(f"malformed telemetry: {exc}") from None
    if batch.v not in SUPPORTED_VERSIONS:
        raise TelemetryError(f"unsupported payload version {batch.v} (this platform reads "
                             f"{', '.join(map(str, SUPPORTED_VERSIONS))})")
    if not DEVICE_ID.match(batch.device_id):
        raise TelemetryError(f"invalid device id {batch.device_id!r}")
    if batch.seq < 0:
        raise TelemetryError(f"negative sequence number {batch.seq}")
    return batch


def encode_batch(batch: TelemetryBatch) -> bytes:
    return _encoder.encode(batch)


def reading_problem(reading: Reading) -> str | None:
    """Why a reading's values cannot be true (None when they can)."""
    checks: list[tuple[str, float | None, tuple[float, float]]]
    if isinstance(reading, FrogReading):
        checks = [("air_temp_c", reading.air_temp_c, TEMPERATURE_RANGE_C),
                  ("rh_pct", reading.rh_pct, RH_RANGE_PCT)]
    elif isinstance(reading, RoadReading):
        checks = [("surface_temp_c", reading.surface_temp_c, TEMPERATURE_RANGE_C),
                  ("air_temp_c", reading.air_temp_c, TEMPERATURE_RANGE_C),
                  ("lat", reading.lat, (-90.0, 90.0)), ("lon", reading.lon, (-180.0, 180.0)),
                  ("rh_pct", reading.rh_pct, RH_RANGE_PCT)]
        if (reading.lat is None) != (reading.lon is None):
            return "lat and lon must come together"
    else:
        checks = [("distance_mm", reading.distance_mm, DISTANCE_RANGE_MM),
                  ("fill_fraction", reading.fill_fraction, (0.0, 1.0)),
                  ("temp_c", reading.temp_c, TEMPERATURE_RANGE_C),
                  ("tilt_deg", reading.tilt_deg, TILT_RANGE_DEG)]
    for name, value, (low, high) in checks:
        if value is None:
            continue
        if not math.isfinite(value):
            return f"{name} is not a finite number"
        if not low <= value <= high:
            return f"{name} {value:g} outside {low:g}..{high:g}"
    return None


# --- config (retained, platform -> device) ------------------------------------------

class DeviceConfig(msgspec.Struct, frozen=True, omit_defaults=True):
    """What the platform tells a device; every field optional, the device keeps its own default."""

    v: int = CONFIG_VERSION
    sample_interval_s: Annotated[int, msgspec.Meta(ge=10, le=86_400)] | None = None
    calibration: dict[str, float] = {}
    bin_depth_mm: Annotated[int, msgspec.Meta(gt=0)] | None = None
    sensor_height_mm: Annotated[int, msgspec.Meta(ge=0)] | None = None


def decode_config(payload: bytes) -> DeviceConfig:
    try:
        return msgspec.json.decode(payload, type=DeviceConfig)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise TelemetryError(f"malformed config: {exc}") from None


def encode_config(config: DeviceConfig) -> bytes:
    return _encoder.encode(config)


ONLINE = b"online"
OFFLINE = b"offline"

# MQTT 5 PUBACK reason 0x10: the broker took a message but nobody subscribes to it, e.g.
# ingest still resubscribing after a broker restart (Mosquitto does not restore shared
# subscriptions). A device keeps such readings and sends them again later.
NO_MATCHING_SUBSCRIBERS = 16
