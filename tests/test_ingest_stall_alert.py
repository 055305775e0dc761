"""The ingest_stalled alert end to end (issue 28, part 4): a real `cityops ingest` process writing
its heartbeat to a real PostgreSQL, a real Mosquitto, and the alerts runner reading the row.

Kill the consumer (SIGKILL: it cannot say goodbye): after its stall_after_s the alert opens; start
it again: the alert clears. Stop the broker: the consumer says it is reconnecting, and after
stall_after_s the alert opens; start the broker: it clears.

ingest_down, the same way: stop every consumer cleanly (each says "stopped" and raises no
ingest_stalled) and after stall_after_s the one ingest_down alert opens; start one: it clears.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.runner import AlertsRunner, SystemClock
from cityops.embedded.broker import EmbeddedBroker
from cityops.embedded.process import free_port
from cityops.settings import AlertsSettings
from cityops.storage import Database
from ingest.process import start_consumer
from tests.ingest_helpers import eventually, register

STALL_AFTER_S = 3.0  # the consumer's CITYOPS_INGEST__STALL_AFTER_S: the alert's threshold for it
DOWN = "ingest_down:ingest"  # the one ingest_down alert: no consumer running at all
SETTINGS = AlertsSettings(clear_hold=timedelta(0))  # resolved at the first clear cycle (default 30 min)


@contextmanager
def consumer(db: Database, broker: EmbeddedBroker, client_id: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_consumer(db.url, broker.url, client_id=client_id, group=client_id, metrics_port=free_port(),
                          log_path=log, stall_after_s=str(STALL_AFTER_S))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)


async def alert_state(db: Database, client_id: str) -> str | None:
    """The ingest_stalled alert of this consumer after one evaluation (None: there is none)."""
    return await cause_state(db, f"ingest_stalled:{client_id}")


async def cause_state(db: Database, cause: str) -> str | None:
    """The latest alert of this cause after one evaluation (None: there is none)."""
    await AlertsRunner(db, SETTINGS, clock=SystemClock()).evaluate()
    state: str | None = await db.fetchval("SELECT state FROM alerts WHERE cause = $1 ORDER BY alert_id DESC LIMIT 1",
                                          cause)
    return state


async def beat(db: Database, client_id: str) -> tuple[str, datetime] | None:
    row = await db.fetchrow("SELECT condition, beat_at FROM ingest_heartbeats WHERE client_id = $1", client_id)
    return None if row is None else (row["condition"], row["beat_at"])


async def test_a_killed_consumer_opens_the_alert_and_its_restart_clears_it(
        fresh_db: Database, broker: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    await register(fresh_db, f"{unique}-f0")  # an active device: someone is waiting on ingest
    client_id = f"ingest-{unique}"

    async def connected_since(after: datetime) -> bool:
        row = await beat(fresh_db, client_id)
        return row is not None and row[0] == "connected" and row[1] > after

    with consumer(fresh_db, broker, client_id, tmp_path / "1.log") as proc:
        await eventually(lambda: connected_since(datetime.now(UTC) - timedelta(days=1)), what="a heartbeat")
        assert await alert_state(fresh_db, client_id) is None  # connected, fresh: nothing to say
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed = datetime.now(UTC)
        await eventually(lambda: _alert_is(fresh_db, client_id, "open"), timeout_s=30,
                         what="the alert opens once the heartbeat is older than stall_after_s")
        # not before: the last heartbeat was at most one interval before the kill
        opened = await fresh_db.fetchrow("SELECT opened_at, detail, severity FROM alerts WHERE cause = $1",
                                         f"ingest_stalled:{client_id}")
        assert opened is not None and opened["severity"] == "critical"
        assert opened["opened_at"] >= killed + timedelta(seconds=STALL_AFTER_S) - timedelta(seconds=STALL_AFTER_S / 4)
        assert "no heartbeat" in opened["detail"]
    restarted = datetime.now(UTC)
    with consumer(fresh_db, broker, client_id, tmp_path / "2.log"):
        await eventually(lambda: connected_since(restarted), what="the restarted consumer's heartbeat")
        assert await alert_state(fresh_db, client_id) == "resolved"


async def test_a_consumer_without_its_broker_opens_the_alert_and_the_broker_back_clears_it(
        fresh_db: Database, broker: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    await register(fresh_db, f"{unique}-f0")
    client_id = f"ingest-{unique}"
    with consumer(fresh_db, broker, client_id, tmp_path / "1.log"):
        await eventually(lambda: _condition_is(fresh_db, client_id, "connected"), what="connected")
        await broker.stop()
        await eventually(lambda: _condition_is(fresh_db, client_id, "reconnecting"), what="reconnecting")
        assert await alert_state(fresh_db, client_id) is None  # reconnecting, but not yet for stall_after_s
        await eventually(lambda: _alert_is(fresh_db, client_id, "open"), timeout_s=30,
                         what="the alert opens after stall_after_s of reconnecting")
        detail = await fresh_db.fetchval("SELECT detail FROM alerts WHERE cause = $1", f"ingest_stalled:{client_id}")
        assert "reconnecting to the broker for" in detail  # the consumer's own alarm, not its silence
        await broker.start()
        await eventually(lambda: _condition_is(fresh_db, client_id, "connected"), timeout_s=60,
                         what="connected again (backoff up to 30 s)")
        assert await alert_state(fresh_db, client_id) == "resolved"
    # a clean stop (SIGTERM) says so: no alert for a consumer someone stopped
    assert await _condition_is(fresh_db, client_id, "stopped")


async def test_every_consumer_stopped_cleanly_opens_ingest_down_and_one_back_clears_it(
        fresh_db: Database, broker: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    await register(fresh_db, f"{unique}-f0")  # an active device: someone is waiting on ingest
    first, second = f"ingest-{unique}-1", f"ingest-{unique}-2"
    with consumer(fresh_db, broker, first, tmp_path / "1.log") as one, \
            consumer(fresh_db, broker, second, tmp_path / "2.log") as two:
        await eventually(lambda: _condition_is(fresh_db, first, "connected"), what="the first consumer connected")
        await eventually(lambda: _condition_is(fresh_db, second, "connected"), what="the second consumer connected")
        assert await cause_state(fresh_db, DOWN) is None  # two running: nothing to say
        one.terminate()
        assert one.wait(30) == 0
        await eventually(lambda: _condition_is(fresh_db, first, "stopped"), what="the first says it stopped")
        assert await cause_state(fresh_db, DOWN) is None  # the other one runs
        stopping = datetime.now(UTC)  # its "stopped" heartbeat comes after this: the alert's clock starts there
        two.terminate()
        assert two.wait(30) == 0
        await eventually(lambda: _condition_is(fresh_db, second, "stopped"), what="the second says it stopped")
        await eventually(lambda: _cause_is(fresh_db, DOWN, "open"), timeout_s=30,
                         what="ingest_down opens once no consumer has run for stall_after_s")
        # not before stall_after_s after the last stop (someone may be restarting it)
        opened = await fresh_db.fetchrow("SELECT opened_at, detail, severity FROM alerts WHERE cause = $1", DOWN)
        assert opened is not None and opened["severity"] == "critical"
        assert opened["opened_at"] >= stopping + timedelta(seconds=STALL_AFTER_S) - timedelta(seconds=STALL_AFTER_S / 4)
        assert f"{first} stopped at" in opened["detail"] and f"{second} stopped at" in opened["detail"]
        # each stop was clean: neither consumer has an ingest_stalled alert of its own
        assert await fresh_db.fetchval("SELECT count(*) FROM alerts WHERE rule = 'ingest_stalled'") == 0
    restarted = datetime.now(UTC)
    with consumer(fresh_db, broker, first, tmp_path / "3.log"):
        async def back() -> bool:
            row = await beat(fresh_db, first)
            return row is not None and row[0] == "connected" and row[1] > restarted
        await eventually(back, what="the restarted consumer's heartbeat")
        assert await cause_state(fresh_db, DOWN) == "resolved"


async def _cause_is(db: Database, cause: str, expected: str) -> bool:
    return await cause_state(db, cause) == expected


async def _alert_is(db: Database, client_id: str, expected: str) -> bool:
    return await alert_state(db, client_id) == expected


async def _condition_is(db: Database, client_id: str, expected: str) -> bool:
    row = await beat(db, client_id)
    return row is not None and row[0] == expected
