"""Closing a gap from The Things Stack's Storage Integration (`cityops lorawan replay`).

The Things Stack's MQTT server is QoS 0 only and keeps nothing for a client that is away: what
is published while the integration is down or disconnected is gone from MQTT. Its Storage
Integration keeps the application's uplinks (for its retention, e.g. 24 hours on The Things
Stack Cloud's default plan) and serves them as newline-delimited JSON, one
`{"result": <uplink message>}` per line (docs/lorawan.md, "Gaps"). Replayed through the same
judge and writer as live uplinks, each stored uplink lands exactly once: the ones already
stored are duplicates of the log, so replaying an overlapping window is safe.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cityops.settings import NetworkServer
from ingest.lorawan.accept import Message, read
from ingest.lorawan.service import LorawanBatch, LorawanService

BATCH = 500


@dataclass
class Replayed:
    lines: int = 0
    readings_new: int = 0
    duplicates: int = 0  # uplinks already stored (or the same frame twice in the file)
    dead_letters: int = 0


def messages(lines: Iterable[str], server: NetworkServer) -> Iterator[Message]:
    """Each stored uplink as the message the MQTT server would have published; a line that is not
    one becomes a message with its problem (a dead letter)."""
    now = datetime.now(UTC)
    for line in lines:
        text = line.strip().removeprefix("data:").strip()  # plain NDJSON, or server-sent events
        if not text:
            continue
        try:
            body = json.loads(text)
            up: Any = body.get("result", body) if isinstance(body, dict) else None
            application = up["end_device_ids"]["application_ids"]["application_id"]
            device = up["end_device_ids"]["device_id"]
        except (ValueError, KeyError, TypeError):
            yield Message(f"storage/{server.name}", text.encode()[:4096], now, None,
                          "storage integration: not an uplink message (want {\"result\": {end_device_ids, ...}})")
            continue
        owner = f"{application}@{server.tenant}" if server.tenant else application
        yield read("tts", f"v3/{owner}/devices/{device}/up", json.dumps(up).encode(), now)


async def replay(service: LorawanService, lines: Iterable[str]) -> Replayed:
    """Commit the stored uplinks in batches through the integration's own commit."""
    done = Replayed()
    batch: list[Message] = []

    async def flush() -> None:
        result = await service.commit(LorawanBatch(events=batch, readings=len(batch)))
        done.readings_new += result.new
        done.duplicates += result.duplicates
        done.dead_letters += result.dead_letters
        batch.clear()

    for message in messages(lines, service.server):
        done.lines += 1
        batch.append(message)
        if len(batch) >= BATCH:
            await flush()
    if batch:
        await flush()
    return done
