"""Deciding what a batch of network-server messages comes to: pure, no I/O.

Per message, in arrival order:
- not readable (EventError), too big, from a DevEUI the registry does not know, from a
  retired device, or through a network server other than the device's: a dead letter;
- an uplink the log already holds (lorawan.frames.duplicates: the same deduplicationId,
  or the same frame counter within the window): ignored, counted;
- any other uplink moves the device's session (lorawan.frames.advance: gaps, resets) and
  is logged; its bytes (or the server's decoded JSON, through a mapping) become readings,
  each checked like a native reading; what cannot be read is a dead letter with the reason;
- a status event gives the battery, a join starts a new session, an ack settles a downlink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

import msgspec

from cityops.storage.readings import READING_TABLES
from contract.telemetry import BinReading, FrogReading, Reading, RoadReading, reading_problem
from ingest.limits import size_problem
from lorawan.codecs import CODECS, DecodedUplink, FieldMapping, apply_mapping
from lorawan.errors import CodecError, EventError
from lorawan.events import DownlinkAck, Event, JoinEvent, ServerKind, StatusEvent, Uplink, parse
from lorawan.frames import Candidate, SeenUplink, Session, advance, duplicates
from lorawan.identifiers import mapping_profile

_READINGS: dict[str, Callable[..., Reading]] = {"frog": FrogReading, "road": RoadReading, "bin": BinReading}
_VALUES = {kind: attrgetter(*spec.value_names) for kind, spec in READING_TABLES.items()}
_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Message:
    """One message from a network server, read as it arrived."""

    topic: str
    payload: bytes
    arrived: datetime
    event: Event | None  # None: a kind we ignore, or unreadable (then `problem`)
    problem: str | None = None

    @property
    def dev_eui(self) -> str | None:
        return self.event.dev_eui if self.event is not None else None


def read(kind: ServerKind, topic: str, payload: bytes, arrived: datetime) -> Message:
    too_big = size_problem(payload)
    if too_big is not None:
        return Message(topic, payload, arrived, None, too_big)
    try:
        return Message(topic, payload, arrived, parse(kind, topic, payload))
    except EventError as exc:
        return Message(topic, payload, arrived, None, f"{kind}: {exc.reason}")


@dataclass(frozen=True)
class LorawanDevice:
    """A registered LoRaWAN device as the registry (cached) has it; its session is its latest uplink in
    the log, read in the commit's transaction."""

    device_id: str
    kind: str
    registered_at: datetime
    retired: bool
    dev_eui: str
    network_server: str | None
    codec: str
    rejoined_at: datetime | None = None
    battery_pct: float | None = None
    external_power: bool | None = None
    status_at: datetime | None = None
    application_id: str | None = None
    ns_device_id: str | None = None
    heard_via: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    topic: str
    payload: bytes
    reason: str
    device_id: str | None
    arrived: datetime


@dataclass(frozen=True, slots=True)
class UplinkRow:
    device_id: str
    received_at: datetime
    f_cnt: int
    dedup_id: str | None
    dev_addr: str | None
    f_port: int | None
    gateways: int
    rssi: float | None
    snr: float | None
    gap: int  # frames missed just before it; -1: a late frame that filled an earlier gap
    new_session: bool
    readings: int


@dataclass(frozen=True)
class Settled:
    """A downlink the network server reported on."""

    device_id: str
    reference: str
    state: str  # transmitted, acknowledged, refused
    at: datetime


@dataclass
class Plan:
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {k: [] for k in READING_TABLES})
    refused: list[Refused] = field(default_factory=list)
    uplinks: list[UplinkRow] = field(default_factory=list)
    devices: dict[str, LorawanDevice] = field(default_factory=dict)  # each device after the batch, by DevEUI
    last_seen: dict[str, datetime] = field(default_factory=dict)
    battery_v: dict[str, float] = field(default_factory=dict)
    settled: list[Settled] = field(default_factory=list)
    duplicates: int = 0
    sessions_started: list[tuple[str, str]] = field(default_factory=list)  # (device_id, why)
    sessions: dict[str, Session] = field(default_factory=dict)  # by device id, after the batch

    @property
    def reading_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def judge(messages: Sequence[Message], *, server: str, devices: Mapping[str, LorawanDevice],
          sessions: Mapping[str, Session], seen: Sequence[SeenUplink], mappings: Mapping[str, FieldMapping],
          window: timedelta, max_clock_ahead: timedelta) -> Plan:
    """What a batch comes to. `devices` by DevEUI (the registered ones among the batch's); `sessions`
    by device id (from the log); `seen`: the log's rows that could make the batch's uplinks duplicates."""
    plan = Plan(sessions=dict(sessions))
    current = plan.sessions  # each device's session as the batch moves it
    uplinks = [m for m in messages if isinstance(m.event, Uplink) and m.event.dev_eui in devices]
    verdicts = dict(zip(map(id, uplinks), duplicates(
        [_candidate(devices[m.event.dev_eui].device_id, m.event) for m in uplinks if isinstance(m.event, Uplink)],
        seen, window), strict=True))
    for message in messages:
        event = message.event
        if event is None:
            if message.problem is not None:
                plan.refused.append(Refused(message.topic, message.payload, message.problem, None, message.arrived))
            continue
        device = plan.devices.get(event.dev_eui) or devices.get(event.dev_eui)
        problem = _refusal(device, server, event.dev_eui)
        if problem is not None or device is None:
            plan.refused.append(Refused(message.topic, message.payload, problem or "unknown DevEUI",
                                        device.device_id if device else None, message.arrived))
            continue
        if isinstance(event, Uplink):
            duplicate = verdicts[id(message)]
            if duplicate is not None:
                plan.duplicates += 1
                continue
            device = _uplink(plan, message, event, device, current, server, mappings, window, max_clock_ahead)
        elif isinstance(event, StatusEvent):
            device = replace(device, battery_pct=event.battery_pct if event.battery_pct is not None
                             else device.battery_pct, external_power=event.external_power,
                             status_at=event.received_at)
            _seen(plan, device.device_id, event.received_at)
        elif isinstance(event, JoinEvent):
            device = replace(device, rejoined_at=event.received_at)
            _seen(plan, device.device_id, event.received_at)
        elif isinstance(event, DownlinkAck) and event.reference is not None:
            state = {True: "acknowledged", False: "refused", None: "transmitted"}[event.acknowledged]
            plan.settled.append(Settled(device.device_id, event.reference, state, event.received_at))
        plan.devices[event.dev_eui] = device
    return plan


def _candidate(device_id: str, uplink: Uplink) -> Candidate:
    return Candidate(device_id=device_id, f_cnt=uplink.f_cnt, received_at=uplink.received_at,
                     dedup_id=uplink.dedup_id)


def _refusal(device: LorawanDevice | None, server: str, dev_eui: str) -> str | None:
    if device is None:
        return f"unknown DevEUI {dev_eui}: not in the registry"
    if device.retired:
        return f"DevEUI {dev_eui} belongs to {device.device_id}, which is retired"
    if device.network_server is not None and device.network_server != server:
        return (f"DevEUI {dev_eui} ({device.device_id}) is registered with network server "
                f"{device.network_server!r}, not {server!r}")
    return None


def _seen(plan: Plan, device_id: str, at: datetime) -> None:
    plan.last_seen[device_id] = max(at, plan.last_seen.get(device_id, at))


def _uplink(plan: Plan, message: Message, uplink: Uplink, device: LorawanDevice, current: dict[str, Session],
            server: str, mappings: Mapping[str, FieldMapping], window: timedelta, max_clock_ahead: timedelta
            ) -> LorawanDevice:
    """Log the uplink, move the device's session in `current`, and turn its payload into rows or dead
    letters; the device's state after it (one copy: this is the hot path)."""
    session = current.get(device.device_id)
    step = advance(session, f_cnt=uplink.f_cnt, dev_addr=uplink.dev_addr, at=uplink.received_at,
                   rejoined=device.rejoined_at is not None, window=window)
    current[device.device_id] = step.session
    gap = step.gap
    if step.new_session:
        plan.sessions_started.append((device.device_id, step.reason or "new session"))
    elif session is not None and step.session.missed < session.missed:
        gap = -1  # a late frame: the log's sum of gaps stays the frames really missed
    readings = 0
    battery_pct = device.battery_pct
    if uplink.f_port:  # port 0 (or none): MAC commands only, no application payload
        try:
            decoded = decode(uplink, device, mappings)
        except CodecError as exc:
            reason = exc.reason if exc.reason.startswith(device.codec) else f"{device.codec}: {exc.reason}"
            plan.refused.append(Refused(message.topic, message.payload, reason, device.device_id, message.arrived))
        else:
            readings = _rows(plan, message, uplink, device, decoded, max_clock_ahead)
            if decoded.battery_v is not None:
                plan.battery_v[device.device_id] = decoded.battery_v
            if decoded.battery_pct is not None:
                battery_pct = decoded.battery_pct
    plan.uplinks.append(UplinkRow(device.device_id, uplink.received_at, uplink.f_cnt, uplink.dedup_id, uplink.dev_addr,
                                  uplink.f_port, uplink.gateways, uplink.rssi, uplink.snr, gap, step.new_session,
                                  readings))
    _seen(plan, device.device_id, uplink.received_at)
    application_id = uplink.application_id or device.application_id
    ns_device_id = uplink.device_name or device.ns_device_id
    if (device.rejoined_at, device.battery_pct, device.heard_via, device.application_id, device.ns_device_id) == \
            (None, battery_pct, server, application_id, ns_device_id):
        return device  # the usual uplink: nothing the registry keeps has changed
    return replace(device, rejoined_at=None, battery_pct=battery_pct, heard_via=server, application_id=application_id,
                   ns_device_id=ns_device_id)


def decode(uplink: Uplink, device: LorawanDevice, mappings: Mapping[str, FieldMapping]) -> DecodedUplink:
    """The server's decoded JSON through a mapping when one reads it (the uplink's device
    profile's, the device's map:<profile>, the codec's vendor fields, in that order);
    otherwise the device's codec on the bytes."""
    named = mapping_profile(device.codec)
    builtin = CODECS.get(device.codec)
    if uplink.decoded is not None:
        candidates = (mappings.get(uplink.profile) if uplink.profile else None,
                      mappings.get(named) if named else None,
                      builtin.vendor_fields if builtin else None)
        for mapping in candidates:
            if mapping is not None and mapping.kind == device.kind:
                mapped = apply_mapping(mapping, uplink.decoded)
                if mapped is not None:
                    return mapped
    if named is not None:
        if named not in mappings:
            raise CodecError(f"no mapping for profile {named!r} (`cityops lorawan mapping set`)")
        raise CodecError("the network server sent no decoded payload that the mapping reads")
    if builtin is None:
        raise CodecError("unknown codec")
    assert uplink.f_port is not None
    return builtin.decode(uplink.f_port, uplink.data)


def _rows(plan: Plan, message: Message, uplink: Uplink, device: LorawanDevice, decoded: DecodedUplink,
          max_clock_ahead: timedelta) -> int:
    """Each measurement as a reading row, checked like a native reading; returns how many."""
    latest_allowed = message.arrived + max_clock_ahead
    values_of = _VALUES[device.kind]
    count = 0
    for index, measurement in enumerate(decoded.measurements):
        ts = measurement.ts or uplink.received_at
        source = "device" if measurement.ts is not None else "network"
        try:  # the codecs and mappings give the kind's field names, as floats (lorawan.codecs.base)
            reading = _READINGS[device.kind](ts=ts, **measurement.values)
        except TypeError as exc:
            problem: str | None = f"fields {sorted(measurement.values)} do not make a {device.kind} reading: {exc}"
        else:
            problem = reading_problem(reading)
            if problem is None and ts > latest_allowed:
                problem = f"timestamp {ts.isoformat()} is ahead of the arrival time by more than allowed"
            if problem is None and ts < device.registered_at:
                problem = f"timestamp {ts.isoformat()} is before the device was registered"
        if problem is not None:
            body = _json.encode({"ts": ts, **measurement.values})
            plan.refused.append(Refused(message.topic, body, f"measurement {index}: {problem}", device.device_id,
                                        message.arrived))
            continue
        plan.rows[device.kind].append((device.device_id, ts, *values_of(reading), source))
        count += 1
    return count
