"""A consumer's heartbeat row (migration 0025): what ingest/health.py judges of this process's own
metrics, written every few seconds so the alerts runner can see it (alerts/ingest_stall.py).

The row says "connected", "reconnecting" or "stalled" with the alarms that have lasted longer
than `stall_after_s`, and "stopped" on a clean exit. A consumer that dies without a word
(SIGKILL, its host gone) or cannot reach the database stops writing: the row's age is then
what the alert goes by. A failed write is logged and tried again next time; it never holds up
the consumer.
"""

from __future__ import annotations

import logging
import time

from cityops.errors import StorageError
from cityops.storage import Database
from ingest.health import Condition, Health, judge, metric_values
from ingest.metrics import IngestMetrics

log = logging.getLogger("ingest.heartbeat")

HEARTBEAT_S = 5.0  # at most; a consumer with a short stall_after_s beats 4 times within it

_UPSERT = """
INSERT INTO ingest_heartbeats (client_id, share_group, condition, alarms, state, stall_after_s, started_at, beat_at)
VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), now())
ON CONFLICT (client_id) DO UPDATE SET share_group = EXCLUDED.share_group, condition = EXCLUDED.condition,
    alarms = EXCLUDED.alarms, state = EXCLUDED.state, stall_after_s = EXCLUDED.stall_after_s,
    started_at = EXCLUDED.started_at, beat_at = EXCLUDED.beat_at
"""


def interval_s(stall_after_s: float) -> float:
    return min(HEARTBEAT_S, stall_after_s / 4)


def health_of(metrics: IngestMetrics, stall_after_s: float) -> Health:
    """This process's health from its own registry, judged as `cityops ingest --check` judges it."""
    values = metric_values((s.name, s.value) for family in metrics.registry.collect() for s in family.samples)
    return judge(values, time.time(), stall_after_s)


class Heartbeat:
    def __init__(self, db: Database, client_id: str, share_group: str, stall_after_s: float):
        self.db = db
        self.client_id = client_id
        self.share_group = share_group
        self.stall_after_s = stall_after_s
        self.started_at = time.time()
        self._failing = False

    async def beat(self, health: Health, condition: Condition | None = None) -> bool:
        """Write the row; False (logged once per spell) when the database would not take it."""
        try:
            await self.db.execute(_UPSERT, self.client_id, self.share_group, condition or health.condition,
                                  health.alarms, health.state, self.stall_after_s, self.started_at)
        except StorageError as exc:
            if not self._failing:
                log.warning("heartbeat not written (%s); the ingest_stalled alert goes by its age", exc)
            self._failing = True
            return False
        self._failing = False
        return True
