"""The ingest_stalled rule (alerts/ingest_stall.py), pure: heartbeat rows in, one signal per consumer.
Its facts as ingest writes them, with real processes: tests/test_ingest_stall_alert.py."""

from datetime import UTC, datetime, timedelta

from alerts.ingest_stall import IngestBeat, ingest_signals

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)


def beat(condition: str = "connected", age_s: float = 2.0, alarms: tuple[str, ...] = ()) -> IngestBeat:
    return IngestBeat("ingest-1", "ingest", condition, alarms, "connected; broker backlog 0 messages", 60.0,
                      NOW - timedelta(seconds=age_s))


def status_of(b: IngestBeat, active_devices: int = 10) -> str:
    (signal,) = ingest_signals([b], NOW, active_devices)
    assert signal.cause == "ingest_stalled:ingest-1"
    return signal.status


def test_a_fresh_heartbeat_without_alarms_is_clear() -> None:
    assert status_of(beat()) == "clear"
    assert status_of(beat("reconnecting", age_s=2)) == "clear"  # reconnecting, not yet for a minute


def test_the_consumers_own_alarms_fire() -> None:
    # health.judge's alarms: reconnecting or stalled for more than stall_after_s (docs/ingest.md)
    assert status_of(beat("reconnecting", alarms=("reconnecting to the broker for 74 s",))) == "firing"
    assert status_of(beat("stalled", alarms=("stalled: 500 messages waiting and no commit for 61 s",))) == "firing"


def test_a_heartbeat_older_than_stall_after_fires_while_devices_are_active() -> None:
    assert status_of(beat(age_s=61)) == "firing"   # killed, host down, or no database: it cannot say
    assert status_of(beat(age_s=59)) == "clear"
    assert status_of(beat(age_s=61), active_devices=0) == "hold"  # nobody waits on it: opens nothing


def test_a_clean_stop_is_clear_however_old() -> None:
    assert status_of(beat("stopped", age_s=3600)) == "clear"
