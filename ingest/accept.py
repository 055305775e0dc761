"""Deciding what of a message is accepted: pure, no I/O, the hot path.

A telemetry message is refused whole (one dead letter) when it cannot be trusted at all:
malformed, a device id in the payload that is not the topic's, a device the registry
does not know or has retired, a kind that is not the device's. Otherwise each reading is
checked on its own (plausible values, not from the future, not from before the device
was registered) and only the bad ones become dead letters.

A message that asked for a receipt (telemetry version 2, contract/receipts.py) ends in
one of two outcomes for its device: stored (its readings are rows or, one by one, dead
letters) or refused (the whole message is a dead letter, with the reason). A message
refused only for now (the per-device rate limit) gets no receipt: the device sends it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, TypeVar

import msgspec

from cityops.storage.devices import DeviceState, RegisteredDevice
from cityops.storage.readings import READING_TABLES, DeadLetter
from contract.receipts import MAX_REASON, RECEIPTS_FROM, Receipt, Refusal, receipted_seq, seq_ranges
from contract.telemetry import (
    OFFLINE,
    ONLINE,
    DeviceTopic,
    Reading,
    TelemetryBatch,
    TelemetryError,
    batch_kind,
    decode_batch,
    reading_problem,
)
from ingest.limits import MAX_PAYLOAD_BYTES, size_problem, stored_payload

# Reading fields carry the readings tables' column names, so rows are built by name.
_VALUES = {kind: attrgetter(*spec.value_names) for kind, spec in READING_TABLES.items()}
_json = msgspec.json.Encoder()


@dataclass(frozen=True)
class Incoming:
    """One MQTT message as it arrived."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True)
class Decoded:
    """A telemetry message after the structural decode (done as it arrives)."""

    incoming: Incoming
    batch: TelemetryBatch | None
    problem: str | None  # why it could not be decoded, when batch is None
    retry_later: bool = False  # refused for now (rate limit): no receipt, the device sends it again

    @property
    def reading_count(self) -> int:
        return len(self.batch.readings) if self.batch is not None else 0

    @property
    def receipt_seq(self) -> int | None:
        """The message's sequence number when it asked for a receipt (read leniently when it
        could not be decoded, so that a malformed message is refused by its number too)."""
        if self.retry_later or len(self.incoming.payload) > MAX_PAYLOAD_BYTES:
            return None  # not worth parsing a payload refused for its size
        if self.batch is not None:
            return self.batch.seq if self.batch.v >= RECEIPTS_FROM else None
        return receipted_seq(self.incoming.payload)


@dataclass
class Receipts:
    """Per device: the receipted messages a commit stored and refused."""

    stored: dict[str, list[int]] = field(default_factory=dict)
    refused: dict[str, list[Refusal]] = field(default_factory=dict)

    def store(self, device_id: str, seq: int | None) -> None:
        if seq is not None:
            self.stored.setdefault(device_id, []).append(seq)

    def refuse(self, device_id: str, seq: int | None, reason: str) -> None:
        if seq is not None:
            self.refused.setdefault(device_id, []).append(Refusal(seq, reason[:MAX_REASON]))

    def merge(self, other: Receipts) -> None:
        for device_id, seqs in other.stored.items():
            self.stored.setdefault(device_id, []).extend(seqs)
        for device_id, refusals in other.refused.items():
            self.refused.setdefault(device_id, []).extend(refusals)

    def by_device(self) -> dict[str, Receipt]:
        return {device_id: Receipt(stored=seq_ranges(self.stored.get(device_id, ())),
                                   refused=self.refused.get(device_id, []))
                for device_id in self.stored.keys() | self.refused.keys()}

    def __len__(self) -> int:
        return len(self.stored.keys() | self.refused.keys())


@dataclass
class Verdict:
    """What a set of messages comes to: rows per kind, dead letters, device news."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {k: [] for k in READING_TABLES})
    dead_letters: list[DeadLetter] = field(default_factory=list)
    states: dict[str, DeviceState] = field(default_factory=dict)
    receipts: Receipts = field(default_factory=Receipts)

    @property
    def reading_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def note(self, state: DeviceState) -> None:
        """Merge a device's news with what this batch already knew; later messages win."""
        old = self.states.get(state.device_id)
        if old is not None:
            state = DeviceState(
                device_id=state.device_id,
                last_seen=_max_known(old.last_seen, state.last_seen),
                battery_v=_newer(state.battery_v, old.battery_v),
                firmware_version=_newer(state.firmware_version, old.firmware_version),
                last_seq=_max_known(old.last_seq, state.last_seq),
                online=_newer(state.online, old.online))
        self.states[state.device_id] = state


_Ordered = TypeVar("_Ordered", datetime, int)
_T = TypeVar("_T")


def _max_known(a: _Ordered | None, b: _Ordered | None) -> _Ordered | None:
    return b if a is None else a if b is None else max(a, b)


def _newer(new: _T | None, old: _T | None) -> _T | None:
    return old if new is None else new


def dead_letter(topic: str, payload: bytes, reason: str, device_id: str | None,
                received_at: datetime | None) -> DeadLetter:
    """A refused message as kept: the payload cut to MAX_STORED_PAYLOAD, the reason saying so."""
    kept, why = stored_payload(payload, reason)
    return DeadLetter(topic, kept, why, device_id, received_at)


def decode(incoming: Incoming) -> Decoded:
    too_big = size_problem(incoming.payload)
    if too_big is not None:
        return Decoded(incoming, None, too_big)  # refused undecoded: a flood of big ones costs no parsing
    try:
        return Decoded(incoming, decode_batch(incoming.payload), None)
    except TelemetryError as exc:
        return Decoded(incoming, None, exc.reason)


def device_ids(messages: Iterable[Decoded]) -> set[str]:
    return {m.batch.device_id for m in messages if m.batch is not None}


def judge(messages: Iterable[Decoded], registry: Mapping[str, RegisteredDevice],
          max_clock_ahead: timedelta) -> Verdict:
    """Rows to write, dead letters to keep and device news, for a batch of telemetry."""
    verdict = Verdict()
    for message in messages:
        _judge_one(message, registry, max_clock_ahead, verdict)
    return verdict


def _judge_one(message: Decoded, registry: Mapping[str, RegisteredDevice], max_clock_ahead: timedelta,
               verdict: Verdict) -> None:
    incoming, batch = message.incoming, message.batch
    topic: DeviceTopic | None = None

    def refuse(reason: str, device_id: str | None) -> None:
        verdict.dead_letters.append(dead_letter(incoming.topic, incoming.payload, reason, device_id,
                                                incoming.received_at))
        if topic is not None:  # the receipt goes to whoever published on the topic (the broker's ACL)
            verdict.receipts.refuse(topic.device_id, message.receipt_seq, reason)

    try:
        topic = DeviceTopic.parse(incoming.topic)
    except TelemetryError as exc:
        refuse(exc.reason, None)
        return
    if batch is None:
        refuse(message.problem or "undecodable", topic.device_id)
        return
    if batch.device_id != topic.device_id:
        refuse(f"payload device_id {batch.device_id!r} does not match the topic's {topic.device_id!r}",
               topic.device_id)
        return
    device = registry.get(batch.device_id)
    kind = batch_kind(batch)
    if device is None:
        refuse("unknown device: not in the registry", batch.device_id)
        return
    if device.retired:
        refuse("device is retired", batch.device_id)
        return
    if device.kind != kind:
        refuse(f"payload kind {kind!r} but the device is registered as {device.kind!r}", batch.device_id)
        return

    latest_allowed = incoming.received_at + max_clock_ahead
    values = _VALUES[kind]
    rows = verdict.rows[kind]
    readings: Sequence[Reading] = batch.readings
    for index, reading in enumerate(readings):
        problem = reading_problem(reading)
        if problem is None and reading.ts > latest_allowed:
            problem = f"timestamp {reading.ts.isoformat()} is ahead of the arrival time by more than allowed"
        if problem is None and reading.ts < device.registered_at:
            problem = f"timestamp {reading.ts.isoformat()} is before the device was registered"
        if problem is not None:
            verdict.dead_letters.append(DeadLetter(
                incoming.topic, _json.encode(reading), f"reading {index}: {problem}", batch.device_id,
                incoming.received_at))
            continue
        rows.append((batch.device_id, reading.ts, *values(reading)))
    verdict.receipts.store(batch.device_id, message.receipt_seq)
    verdict.note(DeviceState(device_id=batch.device_id, last_seen=incoming.received_at,
                             battery_v=batch.battery_v, firmware_version=batch.fw, last_seq=batch.seq))


def status_news(topic: str, payload: bytes, registry: Mapping[str, RegisteredDevice]) -> DeviceState | None:
    """A status-topic message as device news; None for anything not about a known device."""
    try:
        device_id = DeviceTopic.parse(topic).device_id
    except TelemetryError:
        return None
    if device_id not in registry or payload.strip() not in (ONLINE, OFFLINE):
        return None
    return DeviceState(device_id=device_id, online=payload.strip() == ONLINE)
