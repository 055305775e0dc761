"""Receipts: ingest telling a device which of its messages the council has (issue 26).

A broker's PUBACK means "a broker took it", never "the council has it": a broker that
crashes loses what it held in memory. So from telemetry version 2 on, the agent keeps a
reading in its spool until a receipt says the message that carried it was committed, or
refused for good (a dead letter, with the reason). What has no receipt after a while goes
again; the idempotent writer drops the duplicates. A lost receipt costs a resend, never
a reading.

    cityops/v1/devices/{device_id}/receipts   platform -> device, QoS 0, a Receipt

Ingest sends one receipt per device per committed batch, for the messages of that batch
whose telemetry version asked for it (`v` 2); version 1 agents get none and delete on the
PUBACK, as before (docs/ingest.md, "Receipts", says what they risk).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import msgspec

RECEIPT_VERSION = 1
RECEIPTS_FROM = 2  # the first telemetry version whose messages are receipted
MAX_REASON = 200
MAX_ENTRIES = 10_000  # ranges or refusals in one receipt (a batch holds far fewer messages)

Seq = Annotated[int, msgspec.Meta(ge=0)]


class Refusal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A message kept as a dead letter: the device must not send it again."""

    seq: Seq
    reason: Annotated[str, msgspec.Meta(max_length=MAX_REASON)]


class Receipt(msgspec.Struct, frozen=True, omit_defaults=True):
    """Committed (`stored`, inclusive ranges of sequence numbers) and refused messages.

    Unknown fields are ignored, so a later platform may add some without breaking agents."""

    v: int = RECEIPT_VERSION
    stored: Annotated[list[tuple[Seq, Seq]], msgspec.Meta(max_length=MAX_ENTRIES)] = []
    refused: Annotated[list[Refusal], msgspec.Meta(max_length=MAX_ENTRIES)] = []

    def is_stored(self, seq: int) -> bool:
        return any(first <= seq <= last for first, last in self.stored)


class ReceiptError(ValueError):
    """A receipt that does not follow the contract."""


class _Envelope(msgspec.Struct):
    """What ingest reads of a message it could not decode, to refuse it by its number."""

    v: int
    seq: int


_decoder = msgspec.json.Decoder(Receipt)
_envelope = msgspec.json.Decoder(_Envelope)
_encoder = msgspec.json.Encoder()


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted inclusive ranges: [3, 4, 5, 9] -> [(3, 5), (9, 9)]."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def encode_receipt(receipt: Receipt) -> bytes:
    return _encoder.encode(receipt)


def decode_receipt(payload: bytes) -> Receipt:
    try:
        receipt = _decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ReceiptError(f"malformed receipt: {exc}") from None
    if receipt.v != RECEIPT_VERSION:
        raise ReceiptError(f"unsupported receipt version {receipt.v}")
    return receipt


def receipted_seq(payload: bytes) -> int | None:
    """The sequence number of a message that asked for a receipt, read leniently (None if none)."""
    try:
        envelope = _envelope.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return envelope.seq if envelope.v >= RECEIPTS_FROM and envelope.seq >= 0 else None
