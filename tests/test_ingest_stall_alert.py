"""The ingest_stalled alert end to end (issue 28, part 4): a real `cityops ingest` process writing
its heartbeat to a real PostgreSQL, a real Mosquitto, and the alerts runner reading the row.

Kill the consumer (SIGKILL: it cannot say goodbye): after its stall_after_s the alert opens; start
it again: the alert clears. Stop the broker: the consumer says it is reconnecting, and after
stall_after_s the alert opens; start the broker: it clears.
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
    await AlertsRunner(db, SETTINGS, clock=SystemClock()).evaluate()
    state: str | None = await db.fetchval("SELECT state FROM alerts WHERE cause = $1 ORDER BY alert_id DESC LIMIT 1",
                                          f"ingest_stalled:{client_id}")
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


async def _alert_is(db: Database, client_id: str, expected: str) -> bool:
    return await alert_state(db, client_id) == expected


async def _condition_is(db: Database, client_id: str, expected: str) -> bool:
    row = await beat(db, client_id)
    return row is not None and row[0] == expected
