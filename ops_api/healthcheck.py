"""The platform's health, probed at most once per interval whatever the traffic.

One probe checks the database (reachable, migrations pending) and the broker (one MQTT
connection); its report is kept for `ttl_s` and shared by every request in that time.
Concurrent requests that find it stale wait for the same single probe (single flight), so N
requests cost at most one database query set and one broker connection per interval.
Anonymous callers see only `ok` / `degraded`; staff see the details (ops_api/routes/health.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cityops.errors import CityOpsError
from cityops.mqtt import check_broker
from cityops.settings import redact_url
from cityops.storage import Database, status

PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Report:
    ok: bool
    checks: dict[str, dict[str, Any]]
    checked_at: datetime

    @property
    def status(self) -> str:
        return "ok" if self.ok else "degraded"


async def database_check(db: Database) -> dict[str, Any]:
    try:
        state = await asyncio.wait_for(status(db), PROBE_TIMEOUT_S)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {PROBE_TIMEOUT_S:g} s", "url": redact_url(db.url)}
    except CityOpsError as exc:
        return {"ok": False, "error": str(exc), "url": redact_url(db.url)}
    return {"ok": not state.pending, "backend": state.backend.describe(), "applied_migrations": len(state.applied),
            "pending_migrations": len(state.pending), "url": redact_url(db.url)}


API_CLIENT_ID = "cityops-api"  # the one id the broker lets service.api use (devices/dynsec.py)


async def broker_check(url: str) -> dict[str, Any]:
    try:
        await check_broker(url, timeout_s=PROBE_TIMEOUT_S, client_id=API_CLIENT_ID)
    except CityOpsError as exc:
        return {"ok": False, "error": str(exc), "url": redact_url(url)}
    return {"ok": True, "url": redact_url(url)}


def platform_probe(db: Database, mqtt_url: str) -> Callable[[], Awaitable[Report]]:
    async def probe() -> Report:
        database, broker = await asyncio.gather(database_check(db), broker_check(mqtt_url))
        return Report(database["ok"] and broker["ok"], {"database": database, "broker": broker},
                      datetime.now(UTC))
    return probe


@dataclass
class HealthCache:
    probe: Callable[[], Awaitable[Report]]
    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    probes: int = 0  # how many probes ran (the tests count them)
    _report: Report | None = None
    _at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self) -> Report:
        if self._fresh():
            assert self._report is not None
            return self._report
        async with self._lock:
            if not self._fresh():  # another request may have probed while this one waited
                self.probes += 1
                self._report = await self.probe()
                self._at = self.clock()
            assert self._report is not None
            return self._report

    def _fresh(self) -> bool:
        return self._report is not None and self.clock() - self._at < self.ttl_s
