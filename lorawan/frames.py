"""Duplicates, replays, frame-counter resets and gaps: pure judgements over uplinks' counters.

The same radio frame can arrive twice: through two gateways that two integrations or two
network servers do not merge, or redelivered by the broker after our consumer crashed. A
device that rejoins (OTAA) or reboots (ABP without persisting its counter) starts its frame
counter again at 0, which is a new session, not a replay. Frames lost inside a session (a
gap in the counter) are a device-health signal.

Counters are the full 32-bit FCntUp that ChirpStack and The Things Stack reconstruct, so
there is no 16-bit roll-over to undo here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec
from msgspec.structs import replace

__all__ = ["Candidate", "SeenUplink", "Session", "Step", "advance", "duplicates", "health_of"]

SAME_DEDUP_ID = "same deduplicationId as an uplink already stored"


class SeenUplink(msgspec.Struct, frozen=True):
    """What the database already holds for a device, or an earlier uplink in this batch."""

    device_id: str
    f_cnt: int
    received_at: datetime
    dedup_id: str | None


class Candidate(msgspec.Struct, frozen=True):
    """An uplink about to be stored."""

    device_id: str
    f_cnt: int
    received_at: datetime
    dedup_id: str | None


def duplicates(candidates: Sequence[Candidate], seen: Sequence[SeenUplink], window: timedelta) -> list[str | None]:
    """Per candidate, None (new) or why it is a duplicate.

    A duplicate has the same device and deduplication id (when both have one), or the same
    device and frame counter received within `window` either way. A counter seen longer ago
    is a reset after a rejoin or reboot, so new. Candidates are checked against the earlier
    new candidates of the same list too: the first one wins.
    """
    by_dedup: set[tuple[str, str]] = set()
    by_frame: dict[tuple[str, int], list[datetime]] = defaultdict(list)

    def remember(device_id: str, f_cnt: int, at: datetime, dedup_id: str | None) -> None:
        if dedup_id is not None:
            by_dedup.add((device_id, dedup_id))
        by_frame[device_id, f_cnt].append(at)

    for old in seen:
        remember(old.device_id, old.f_cnt, old.received_at, old.dedup_id)

    verdicts: list[str | None] = []
    for new in candidates:
        verdict = None
        if new.dedup_id is not None and (new.device_id, new.dedup_id) in by_dedup:
            verdict = SAME_DEDUP_ID
        else:
            near = [at for at in by_frame.get((new.device_id, new.f_cnt), ()) if abs(new.received_at - at) <= window]
            if near:
                first = min(near, key=lambda at: abs(new.received_at - at))
                verdict = f"frame {new.f_cnt} already stored (received {first:%H:%M:%S})"
        if verdict is None:
            remember(new.device_id, new.f_cnt, new.received_at, new.dedup_id)
        verdicts.append(verdict)
    return verdicts


class Session(msgspec.Struct, frozen=True):
    """A device's current frame-counter session, kept by the caller between uplinks."""

    dev_addr: str | None
    last_f_cnt: int
    last_at: datetime
    missed: int = 0             # frames missed in this session so far


class Step(msgspec.Struct, frozen=True):
    session: Session
    gap: int                    # frames missed just before this one (0 normally)
    new_session: bool
    reason: str | None          # why a new session: "rejoined", "new device address", "frame counter went back
                                # from N to M", "first uplink"


def advance(session: Session | None, *, f_cnt: int, dev_addr: str | None, at: datetime, rejoined: bool,
            window: timedelta) -> Step:
    """The session after one more uplink, and what the uplink says about it.

    A new session starts with the first uplink, after a join since the last uplink, when the
    device address changes (both known), or when the counter goes back and the frame is not
    a late arrival. A late arrival (counter back by no more than the frames counted missing,
    same address, within `window` of the last uplink) fills a gap counted before: `missed`
    drops by one and the last counter stays. (A counter back by more than was ever missed is a
    reboot, however soon: an ABP device without a saved counter starts again at 0.)
    After a join the counter restarts at 0 (LoRaWAN 1.0.x, "Frame counter (FCnt)"), so a new session's first
    frame N means N frames lost; after a reboot or a first sighting nothing is known of them.
    """
    if session is None:
        return _start(f_cnt, dev_addr, at, "first uplink", gap=0)
    if rejoined:
        return _start(f_cnt, dev_addr, at, "rejoined", gap=f_cnt)
    if dev_addr is not None and session.dev_addr is not None and dev_addr != session.dev_addr:
        return _start(f_cnt, dev_addr, at, "new device address", gap=f_cnt)
    if f_cnt < session.last_f_cnt:
        if abs(at - session.last_at) <= window and session.last_f_cnt - f_cnt <= session.missed:
            late = replace(session, dev_addr=session.dev_addr or dev_addr, missed=max(session.missed - 1, 0))
            return Step(session=late, gap=0, new_session=False, reason=None)
        reason = f"frame counter went back from {session.last_f_cnt} to {f_cnt}"
        return _start(f_cnt, dev_addr, at, reason, gap=0)
    if f_cnt == session.last_f_cnt:  # the same frame again (a retransmission): nothing moves
        return Step(session=session, gap=0, new_session=False, reason=None)
    gap = f_cnt - session.last_f_cnt - 1
    moved = Session(dev_addr=dev_addr or session.dev_addr, last_f_cnt=f_cnt, last_at=at, missed=session.missed + gap)
    return Step(session=moved, gap=gap, new_session=False, reason=None)


def _start(f_cnt: int, dev_addr: str | None, at: datetime, reason: str, *, gap: int) -> Step:
    return Step(session=Session(dev_addr=dev_addr, last_f_cnt=f_cnt, last_at=at, missed=gap), gap=gap,
                new_session=True, reason=reason)


def health_of(uplinks: int, missed: int) -> float | None:
    """The delivery ratio uplinks / (uplinks + missed); None when there is nothing to judge."""
    total = uplinks + missed
    if total <= 0:
        return None
    return uplinks / total
