"""lorawan.frames: duplicates, replays, frame-counter resets and gaps.

Where the expectations come from:
- the brief (docs/lorawan task): the rules for duplicates, sessions, late arrivals and gaps, and its
  worked cases (two gateways 2 s apart, redelivery, rejoin a day later, ABP reboot, 5,6,9 -> gap 2,
  late 8 after 9);
- LoRaWAN 1.0.x, "Frame counter (FCnt)": FCntUp restarts at 0 after a join; 32-bit counters;
- ChirpStack `deduplicationId` (one per merged uplink; integration.proto), The Things Stack's
  "as:up:" correlation id (data formats), both carried in `dedup_id`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorawan.frames import Candidate, SeenUplink, Session, advance, duplicates, health_of

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)
S = timedelta(seconds=1)


def seen(f_cnt: int, at: datetime, dedup_id: str | None = None, device: str = "frog-1") -> SeenUplink:
    return SeenUplink(device_id=device, f_cnt=f_cnt, received_at=at, dedup_id=dedup_id)


def candidate(f_cnt: int, at: datetime, dedup_id: str | None = None, device: str = "frog-1") -> Candidate:
    return Candidate(device_id=device, f_cnt=f_cnt, received_at=at, dedup_id=dedup_id)


# -- duplicates ---------------------------------------------------------------------------------


def test_same_frame_through_two_integrations_is_a_duplicate() -> None:
    # the brief: same f_cnt, 2 s apart, different dedup ids (two integrations, each with its own id)
    verdicts = duplicates([candidate(7, T0, "a"), candidate(7, T0 + 2 * S, "b")], [], WINDOW)
    assert verdicts == [None, "frame 7 already stored (received 10:00:00)"]


def test_same_frame_against_the_database_is_a_duplicate() -> None:
    verdicts = duplicates([candidate(7, T0 + 2 * S, "b")], [seen(7, T0, "a")], WINDOW)
    assert verdicts == ["frame 7 already stored (received 10:00:00)"]


def test_redelivery_with_the_same_dedup_id_is_a_duplicate() -> None:
    # the brief: the broker redelivers after a crash: same deduplicationId, found in the database or the batch
    reason = "same deduplicationId as an uplink already stored"
    assert duplicates([candidate(7, T0, "a")], [seen(7, T0, "a")], WINDOW) == [reason]
    assert duplicates([candidate(7, T0, "a"), candidate(7, T0, "a")], [], WINDOW) == [None, reason]


def test_same_dedup_id_is_a_duplicate_however_late() -> None:
    # the rule: same device and dedup_id; the window bounds only the frame-counter rule
    later = T0 + timedelta(days=3)
    assert duplicates([candidate(7, later, "a")], [seen(7, T0, "a")], WINDOW) == [
        "same deduplicationId as an uplink already stored"]


def test_rejoin_restarts_the_counter_and_is_not_a_replay() -> None:
    # the brief: f_cnt 0,1,2 after earlier 0,1,2 a day ago -> new
    day = timedelta(days=1)
    old = [seen(n, T0 + n * 60 * S, f"old-{n}") for n in range(3)]
    new = [candidate(n, T0 + day + n * 60 * S, f"new-{n}") for n in range(3)]
    assert duplicates(new, old, WINDOW) == [None, None, None]


def test_window_is_inclusive_and_either_way() -> None:
    # the rule: |received_at difference| <= window, so an earlier-timestamped arrival counts too
    assert duplicates([candidate(7, T0 + WINDOW)], [seen(7, T0)], WINDOW) != [None]
    assert duplicates([candidate(7, T0 - WINDOW)], [seen(7, T0)], WINDOW) != [None]
    assert duplicates([candidate(7, T0 + WINDOW + S)], [seen(7, T0)], WINDOW) == [None]


def test_other_devices_and_other_counters_are_new() -> None:
    verdicts = duplicates([candidate(7, T0, "a", device="frog-2"), candidate(8, T0, "b")],
                          [seen(7, T0, "a")], WINDOW)
    assert verdicts == [None, None]  # the rule: same device, and same dedup id or same counter


def test_missing_dedup_ids_fall_back_to_the_counter() -> None:
    # the rule: dedup ids compare only when both have one
    assert duplicates([candidate(7, T0 + S, None)], [seen(7, T0, "a")], WINDOW) == [
        "frame 7 already stored (received 10:00:00)"]
    assert duplicates([candidate(7, T0 + WINDOW * 2, None)], [seen(7, T0, None)], WINDOW) == [None]


def test_the_first_candidate_wins_and_a_duplicate_is_not_remembered() -> None:
    # the brief: candidates are checked against earlier candidates, the first one wins; a duplicate is
    # not stored, so a third arrival is judged against the first alone (here: beyond its window)
    batch = [candidate(7, T0), candidate(7, T0 + WINDOW), candidate(7, T0 + 2 * WINDOW - S)]
    assert duplicates(batch, [], WINDOW) == [None, "frame 7 already stored (received 10:00:00)", None]


def test_reason_names_the_nearest_stored_time() -> None:
    stored = [seen(7, T0), seen(7, T0 + 5 * 60 * S)]
    assert duplicates([candidate(7, T0 + 6 * 60 * S)], stored, WINDOW) == [
        "frame 7 already stored (received 10:05:00)"]


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2**32 - 1), st.integers(0, 10**6),
                          st.one_of(st.none(), st.uuids().map(str))), max_size=30))
def test_a_replayed_batch_is_all_duplicates(rows: list[tuple[str, int, int, str | None]]) -> None:
    # CONVENTIONS: "a replayed batch changes nothing": what was kept, stored and sent again, is all duplicate
    batch = [Candidate(device, f_cnt, T0 + seconds * S, dedup) for device, f_cnt, seconds, dedup in rows]
    kept = [c for c, verdict in zip(batch, duplicates(batch, [], WINDOW), strict=True) if verdict is None]
    stored = [SeenUplink(c.device_id, c.f_cnt, c.received_at, c.dedup_id) for c in kept]
    assert all(verdict is not None for verdict in duplicates(kept, stored, WINDOW))


# -- sessions and gaps --------------------------------------------------------------------------


def step_through(f_cnts: list[int], *, start: datetime = T0) -> Session:
    session = None
    for i, f_cnt in enumerate(f_cnts):
        session = advance(session, f_cnt=f_cnt, dev_addr="00189440", at=start + i * 60 * S, rejoined=False,
                          window=WINDOW).session
    assert session is not None
    return session


def test_first_uplink_starts_a_session() -> None:
    step = advance(None, f_cnt=41, dev_addr="00189440", at=T0, rejoined=False, window=WINDOW)
    # the brief: reason "first uplink"; nothing is known of frames before it, so no gap
    assert (step.new_session, step.reason, step.gap) == (True, "first uplink", 0)
    assert step.session == Session(dev_addr="00189440", last_f_cnt=41, last_at=T0, missed=0)


def test_gap_counting() -> None:
    # the brief: 5, 6, 9 -> gap 2 (frames 7 and 8 lost)
    session = step_through([5, 6])
    step = advance(session, f_cnt=9, dev_addr="00189440", at=T0 + 10 * 60 * S, rejoined=False, window=WINDOW)
    assert (step.gap, step.new_session, step.reason) == (2, False, None)
    assert (step.session.last_f_cnt, step.session.missed) == (9, 2)


def test_late_frame_fills_a_gap() -> None:
    # the brief: late frame 8 after 9 within the window -> missed decreases; last_f_cnt and last_at stay
    session = step_through([5, 6, 9])
    step = advance(session, f_cnt=8, dev_addr="00189440", at=session.last_at + 30 * S, rejoined=False,
                   window=WINDOW)
    assert (step.new_session, step.gap, step.reason) == (False, 0, None)
    assert step.session == Session(dev_addr="00189440", last_f_cnt=9, last_at=session.last_at, missed=1)


def test_late_frame_never_takes_missed_below_zero() -> None:
    session = Session(dev_addr="00189440", last_f_cnt=9, last_at=T0, missed=0)
    step = advance(session, f_cnt=8, dev_addr="00189440", at=T0 + S, rejoined=False, window=WINDOW)
    assert step.session.missed == 0  # the brief: "missed - 1, not below 0"


def test_abp_reboot_without_a_join_starts_a_new_session() -> None:
    # the brief: an ABP device rebooting without persisting its counter, hours later, no join event
    session = step_through([118, 119, 120])
    step = advance(session, f_cnt=0, dev_addr="00189440", at=session.last_at + timedelta(hours=3), rejoined=False,
                   window=WINDOW)
    assert (step.new_session, step.reason) == (True, "frame counter went back from 120 to 0")
    assert step.session == Session(dev_addr="00189440", last_f_cnt=0, last_at=session.last_at + timedelta(hours=3))


def test_rejoin_starts_a_new_session_and_counts_frames_lost_since_the_join() -> None:
    session = step_through([118, 119, 120])
    at = session.last_at + timedelta(days=1)
    step = advance(session, f_cnt=0, dev_addr="0118a2b3", at=at, rejoined=True, window=WINDOW)
    assert (step.new_session, step.reason, step.gap, step.session.missed) == (True, "rejoined", 0, 0)
    # LoRaWAN 1.0.x: FCntUp is 0 after the join-accept, so a first frame 2 means frames 0 and 1 were lost
    step = advance(session, f_cnt=2, dev_addr="0118a2b3", at=at, rejoined=True, window=WINDOW)
    assert (step.gap, step.session.missed) == (2, 2)


def test_rejoin_is_a_new_session_even_when_the_counter_goes_on() -> None:
    # the brief: a join event since the last uplink is a new session, whatever the counter says
    session = step_through([3, 4])
    step = advance(session, f_cnt=5, dev_addr="00189440", at=T0 + 5 * 60 * S, rejoined=True, window=WINDOW)
    assert (step.new_session, step.reason) == (True, "rejoined")


def test_new_device_address_starts_a_new_session() -> None:
    # the brief: dev_addr changed (both known); a join assigns a new DevAddr (LoRaWAN 1.0.x, join-accept)
    session = step_through([118, 119, 120])
    step = advance(session, f_cnt=0, dev_addr="0118a2b3", at=session.last_at + S, rejoined=False, window=WINDOW)
    assert (step.new_session, step.reason) == (True, "new device address")
    assert step.session.dev_addr == "0118a2b3"


def test_unknown_device_address_is_no_change() -> None:
    session = step_through([5, 6])
    step = advance(session, f_cnt=7, dev_addr=None, at=T0 + 5 * 60 * S, rejoined=False, window=WINDOW)
    assert (step.new_session, step.gap) == (False, 0)
    assert step.session.dev_addr == "00189440"  # the known address is kept


def test_counter_back_beyond_the_window_is_a_reset_not_a_late_frame() -> None:
    session = step_through([5, 6, 9])
    step = advance(session, f_cnt=8, dev_addr="00189440", at=session.last_at + WINDOW + S, rejoined=False,
                   window=WINDOW)
    assert (step.new_session, step.reason) == (True, "frame counter went back from 9 to 8")


def test_the_same_counter_again_moves_nothing() -> None:
    session = step_through([5, 6])
    step = advance(session, f_cnt=6, dev_addr="00189440", at=T0 + 9 * 60 * S, rejoined=False, window=WINDOW)
    assert step.session == session
    assert (step.new_session, step.gap) == (False, 0)


def test_counters_are_32_bit_without_roll_over() -> None:
    # the brief: both servers report the full 32-bit counter; 2**32 - 2 to 2**32 - 1 is the next frame
    session = Session(dev_addr="00189440", last_f_cnt=2**32 - 2, last_at=T0)
    step = advance(session, f_cnt=2**32 - 1, dev_addr="00189440", at=T0 + S, rejoined=False, window=WINDOW)
    assert (step.gap, step.new_session) == (0, False)
    step = advance(Session(dev_addr=None, last_f_cnt=65535, last_at=T0), f_cnt=65537, dev_addr=None,
                   at=T0 + S, rejoined=False, window=WINDOW)
    assert step.gap == 1  # no 16-bit wrap at 65535: frame 65536 was lost


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=40).map(sorted))
def test_missed_plus_received_spans_the_counters(f_cnts: list[int]) -> None:
    # arithmetic of the gap rule: in one session of rising counters, distinct frames received plus frames
    # missed is exactly last - first + 1
    session = step_through(f_cnts)
    assert len(set(f_cnts)) + session.missed == f_cnts[-1] - f_cnts[0] + 1


# -- health -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("uplinks", "missed", "ratio"), [
    (0, 0, None),      # the brief: None when there is nothing to judge
    (9, 1, 0.9),       # uplinks / (uplinks + missed)
    (10, 0, 1.0),
    (0, 5, 0.0),
])
def test_health_of(uplinks: int, missed: int, ratio: float | None) -> None:
    assert health_of(uplinks, missed) == ratio


def test_abp_reboot_soon_after_is_a_new_session_not_a_late_frame() -> None:
    # A counter back by more than was ever counted missing cannot be a late frame (nothing was
    # missed at 500): an ABP device without a saved counter rebooted, even within the window.
    session = Session(dev_addr="26011f00", last_f_cnt=500, last_at=T0, missed=0)
    step = advance(session, f_cnt=0, dev_addr="26011f00", at=T0 + 90 * S, rejoined=False, window=WINDOW)
    assert step.new_session and step.reason == "frame counter went back from 500 to 0"
    assert step.session.last_f_cnt == 0
