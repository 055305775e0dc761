"""Receipts (issue 26, contract/receipts.py): the contract, what ingest's verdict receipts, and
the agent deleting its spool only on a receipt, resending what has none.

The expectations come from the issue's contract: a reading leaves a device's spool only once
ingest committed it (stored) or kept it as a dead letter (refused); a lost receipt costs a
resend, never a reading; version 1 agents keep the PUBACK behaviour."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cityops.storage.devices import RegisteredDevice
from contract.receipts import (
    MAX_REASON,
    Receipt,
    ReceiptError,
    Refusal,
    decode_receipt,
    encode_receipt,
    receipted_seq,
    seq_ranges,
)
from contract.telemetry import FrogBatch, FrogReading, decode_batch, encode_batch, receipts_topic, telemetry_topic
from firmware.sender import Sender, SendPolicy
from firmware.spool import Spool
from ingest.accept import Decoded, Incoming, decode, judge

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
REGISTRY = {"frog-1": RegisteredDevice("frog-1", "frog", NOW - timedelta(days=10), retired=False),
            "road-1": RegisteredDevice("road-1", "road", NOW - timedelta(days=10), retired=False)}


# --- the contract ---------------------------------------------------------------------

def test_sequence_numbers_travel_as_ranges() -> None:
    assert seq_ranges([9, 3, 4, 5, 5]) == [(3, 5), (9, 9)]
    assert seq_ranges([]) == []
    receipt = Receipt(stored=seq_ranges([3, 4, 5, 9]), refused=[Refusal(7, "unknown device")])
    again = decode_receipt(encode_receipt(receipt))
    assert again == receipt
    assert [s for s in range(12) if again.is_stored(s)] == [3, 4, 5, 9]


def test_a_receipt_from_a_later_platform_is_read_and_a_broken_one_refused() -> None:
    assert decode_receipt(b'{"v":1,"stored":[[1,2]],"added_later":true}').is_stored(2)
    for payload in (b"not json", b'{"v":2,"stored":[]}', b'{"v":1,"stored":[[-1,2]]}',
                    b'{"v":1,"refused":[{"seq":1,"reason":"' + b"x" * (MAX_REASON + 1) + b'"}]}'):
        with pytest.raises(ReceiptError):
            decode_receipt(payload)


def test_only_version_2_messages_ask_for_a_receipt() -> None:
    assert receipted_seq(b'{"kind":"frog","v":2,"seq":41,"readings":"broken"}') == 41
    assert receipted_seq(b'{"kind":"frog","v":1,"seq":41}') is None
    assert receipted_seq(b"{not json") is None


def test_topic_of_a_device_receipts() -> None:
    assert receipts_topic("frog-1") == "cityops/v1/devices/frog-1/receipts"


# --- ingest's verdict -----------------------------------------------------------------

def message(device: str = "frog-1", *, v: int = 2, seq: int = 1, topic_device: str | None = None,
            readings: list[FrogReading] | None = None) -> Decoded:
    payload = encode_batch(FrogBatch(v=v, device_id=device, seq=seq, fw="2.0.0", readings=readings or [
        FrogReading(ts=NOW, air_temp_c=20.0, rh_pct=55.0)]))
    return decode(Incoming(telemetry_topic(topic_device or device), payload, NOW))


def receipts_of(*messages: Decoded) -> dict[str, Receipt]:
    return judge(messages, REGISTRY, timedelta(minutes=5)).receipts.by_device()


def test_stored_messages_are_receipted_by_their_numbers() -> None:
    receipts = receipts_of(message(seq=4), message(seq=5), message(seq=7))
    assert receipts == {"frog-1": Receipt(stored=[(4, 5), (7, 7)])}


def test_a_message_with_some_bad_readings_is_stored_its_bad_readings_kept_as_dead_letters() -> None:
    bad = FrogReading(ts=NOW, air_temp_c=20.0, rh_pct=140.0)
    verdict = judge([message(seq=3, readings=[FrogReading(ts=NOW, air_temp_c=1.0, rh_pct=50.0), bad])],
                    REGISTRY, timedelta(minutes=5))
    assert len(verdict.dead_letters) == 1
    assert verdict.receipts.by_device() == {"frog-1": Receipt(stored=[(3, 3)])}


def test_refused_messages_carry_the_dead_letter_reason_to_the_topic_device() -> None:
    receipts = receipts_of(message("road-1", seq=2), message("frog-2", topic_device="frog-1", seq=6),
                           decode(Incoming(telemetry_topic("frog-1"), b'{"v":2,"seq":8,"kind":"frog"}', NOW)))
    road = receipts["road-1"]
    assert road.stored == [] and [r.seq for r in road.refused] == [2]
    assert "registered as 'road'" in road.refused[0].reason
    frog = receipts["frog-1"]
    assert {r.seq: r.reason.split(":")[0] for r in frog.refused} == {
        6: "payload device_id 'frog-2' does not match the topic's 'frog-1'", 8: "malformed telemetry"}


def test_version_1_and_rate_limited_messages_get_no_receipt() -> None:
    limited = message(seq=9)
    limited = Decoded(limited.incoming, None, "rate limit", retry_later=True)
    verdict = judge([message(v=1, seq=1), limited], REGISTRY, timedelta(minutes=5))
    assert len(verdict.receipts) == 0
    assert verdict.rows["frog"] and len(verdict.dead_letters) == 1  # stored, and refused for now


# --- the agent's sender ---------------------------------------------------------------

class Broker:
    """The link, at its seam: records what the sender publishes and PUBACKs it at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, FrogBatch]] = []  # (mid, batch)
        self.generation = 1
        self.sender: Sender | None = None

    def publish(self, topic: str, payload: bytes) -> tuple[int, int]:
        batch = decode_batch(payload)
        assert isinstance(batch, FrogBatch) and self.sender is not None
        self.sent.append((len(self.sent) + 1, batch))
        asyncio.get_running_loop().call_soon(self.sender.acked, self.generation, len(self.sent))
        return self.generation, len(self.sent)


def reading(n: int) -> FrogReading:
    return FrogReading(ts=NOW + timedelta(minutes=n), air_temp_c=10.0 + n, rh_pct=50.0)


async def wait_for(predicate, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 (the sender's task changes the state)
            await asyncio.sleep(0.01)


@pytest.fixture
async def sending(tmp_path: Path):
    tasks: list[asyncio.Task[None]] = []

    def start(policy: SendPolicy, readings: int) -> tuple[Sender, Broker, Spool]:
        spool = Spool(tmp_path / "spool.sqlite3", FrogReading, durable=False)
        for n in range(readings):
            spool.add(reading(n))
        sender = Sender("frog-1", "frog", spool, "2.0.0", policy=policy, seed=1)
        broker = Broker()
        broker.sender = sender
        sender.attach(broker.publish)
        tasks.append(asyncio.create_task(sender.run()))
        sender.link_up(broker.generation)
        return sender, broker, spool

    yield start
    for task in tasks:
        task.cancel()


FAST = SendPolicy(batch_max=2, window=4, messages_per_s=1000, replay_jitter_s=0.0, receipt_window=3,
                  receipt_timeout_s=0.3, receipt_timeout_max_s=1.0)


async def test_a_puback_alone_deletes_nothing_a_receipt_does(sending) -> None:
    sender, broker, spool = sending(FAST, 10)
    await wait_for(lambda: len(broker.sent) == 3)  # the receipt window: 3 messages unconfirmed
    await asyncio.sleep(0.1)  # the PUBACKs are in (call_soon): nothing more may happen
    assert spool.pending() == 10 and len(broker.sent) == 3, "PUBACKs must neither delete nor open the window"
    assert all(batch.v == 2 for _, batch in broker.sent)
    first = broker.sent[0][1]
    sender.receipt_received(encode_receipt(Receipt(stored=[(first.seq, first.seq)])))
    assert spool.pending() == 8 and sender.counters.acked_readings == 2
    await wait_for(lambda: len(broker.sent) == 4)  # the window moved on by one


async def test_without_a_receipt_the_messages_go_again_and_a_late_receipt_still_counts(sending) -> None:
    sender, broker, spool = sending(FAST, 4)
    await wait_for(lambda: len(broker.sent) == 2)
    first_round = [batch for _, batch in broker.sent]
    await wait_for(lambda: len(broker.sent) == 4, timeout_s=2)  # resent after the 0.3 s timeout
    assert [b.readings for _, b in broker.sent[2:]] == [b.readings for b in first_round]
    assert {b.seq for _, b in broker.sent[2:]}.isdisjoint({b.seq for b in first_round})
    assert sender.counters.receipt_timeouts == 1 and spool.pending() == 4
    late = first_round[0].seq  # the receipt of the first attempt arrives after all
    sender.receipt_received(encode_receipt(Receipt(stored=[(late, late)])))
    assert spool.pending() == 2
    # a receipt came (the timeout is back to 0.3 s): only what is still spooled goes again, in one message
    await wait_for(lambda: len(broker.sent) == 5, timeout_s=3)
    again = broker.sent[-1][1]
    assert again.readings == first_round[1].readings and sender.counters.receipt_timeouts == 2
    sender.receipt_received(encode_receipt(Receipt(stored=[(again.seq, again.seq)])))
    await wait_for(sender.idle)
    assert spool.pending() == 0 and sender.counters.acked_readings == 4


async def test_a_refused_message_leaves_the_spool_and_is_counted_not_acknowledged(sending) -> None:
    sender, broker, spool = sending(FAST, 2)
    await wait_for(lambda: len(broker.sent) == 1)
    seq = broker.sent[0][1].seq
    sender.receipt_received(encode_receipt(Receipt(refused=[Refusal(seq, "device is retired")])))
    assert spool.pending() == 0 and sender.counters.refused_readings == 2 and sender.counters.acked_readings == 0
    assert sender.idle()


async def test_a_receipt_for_someone_else_or_garbage_changes_nothing(sending) -> None:
    sender, broker, spool = sending(FAST, 2)
    await wait_for(lambda: len(broker.sent) == 1)
    sender.receipt_received(encode_receipt(Receipt(stored=[(10_000, 20_000)])))
    sender.receipt_received(b"\xff garbage")
    assert spool.pending() == 2


async def test_without_receipts_the_puback_deletes_as_in_version_1(sending) -> None:
    legacy = SendPolicy(batch_max=2, messages_per_s=1000, replay_jitter_s=0.0, receipts=False)
    sender, broker, spool = sending(legacy, 4)
    await wait_for(lambda: sender.idle())
    assert len(broker.sent) == 2 and all(batch.v == 1 for _, batch in broker.sent)
    assert spool.pending() == 0 and sender.counters.acked_readings == 4
