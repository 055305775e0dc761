"""The ingest_stalled rule (alerts/ingest_stall.py), pure: heartbeat rows in, one signal per consumer;
and ingest_down, one signal for the platform: is any consumer running at all.
Their facts as ingest writes them, with real processes: tests/test_ingest_stall_alert.py."""

from datetime import UTC, datetime, timedelta

from alerts.ingest_stall import IngestBeat, ingest_down_signal, ingest_signals

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)


def beat(condition: str = "connected", age_s: float = 2.0, alarms: tuple[str, ...] = (),
         client_id: str = "ingest-1") -> IngestBeat:
    return IngestBeat(client_id, "ingest", condition, alarms, "connected; broker backlog 0 messages", 60.0,
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


def down(*beats: IngestBeat, active_devices: int = 10) -> str:
    signal = ingest_down_signal(beats, NOW, active_devices)
    assert signal.cause == "ingest_down:ingest" and signal.severity == "critical"
    return signal.status


def test_every_consumer_stopped_for_longer_than_the_stall_period_is_ingest_down() -> None:
    # each stop alone raises nothing (someone meant it); all of them for more than a minute does
    assert down(beat("stopped", age_s=61), beat("stopped", age_s=3600, client_id="ingest-2")) == "firing"
    assert down(beat("stopped", age_s=59), beat("stopped", age_s=3600, client_id="ingest-2")) == "hold"
    signal = ingest_down_signal([beat("stopped", age_s=90)], NOW, 10)
    assert "ingest-1 stopped at 2026-12-07 06:58:30 UTC" in signal.detail and signal.value == 90


def test_one_live_consumer_clears_it_whatever_the_others_say() -> None:
    assert down(beat("stopped", age_s=3600), beat(client_id="ingest-2")) == "clear"
    # running but stuck is running: ingest_stalled speaks for it, not ingest_down
    assert down(beat("stopped", age_s=3600), beat("reconnecting", alarms=("reconnecting for 74 s",),
                                                  client_id="ingest-2")) == "clear"


def test_a_silent_consumer_counts_as_gone_once_its_heartbeat_is_stale() -> None:
    # stale after stall_after_s (60 s): ingest_stalled fires then; ingest_down a stall period later
    assert down(beat(age_s=61)) == "hold"
    assert down(beat(age_s=119)) == "hold"
    assert down(beat(age_s=121)) == "firing"
    assert down(beat(age_s=121), beat("stopped", age_s=30, client_id="ingest-2")) == "hold"  # the last went 30 s ago


def test_ingest_down_holds_without_active_devices_or_without_any_heartbeat() -> None:
    assert down(beat("stopped", age_s=3600), active_devices=0) == "hold"   # nobody waits on ingest
    assert down() == "hold"   # no consumer has ever run against this database: nothing to compare
