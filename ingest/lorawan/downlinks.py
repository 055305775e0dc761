"""Reporting-interval changes to LoRaWAN devices, as downlinks through their network server.

A council changes a device's `sample_interval_s` in the registry (`cityops device update
--sample-interval-s`, PATCH /admin/devices/{id}); the integration that last heard the device
finds the change, asks the device's codec for the command (lorawan.codecs: `interval_downlink`)
and queues it, confirmed, on the network server, which sends it after the device's next uplink
(class A). The device's history (`cityops device show`) gets a `downlink` event when it is
queued and again when the server reports it transmitted, acknowledged or refused. A codec
with no such command gets one `downlink` event saying so, and nothing is sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from cityops.settings import NetworkServer
from cityops.storage import Database
from ingest.lorawan.store import new_downlink_id
from lorawan.codecs import CODECS
from lorawan.errors import CodecError, EventError
from lorawan.events import downlink_message

log = logging.getLogger("ingest.lorawan.downlinks")

Publish = Callable[[str, bytes, int], bool]

_CHANGED = """
SELECT l.device_id, l.dev_eui, l.codec, l.application_id, l.ns_device_id, d.sample_interval_s
FROM lorawan_devices l JOIN devices d ON d.device_id = l.device_id
WHERE d.status = 'active' AND d.sample_interval_s IS NOT NULL
  AND d.sample_interval_s IS DISTINCT FROM l.interval_sent_s AND l.heard_via = $1
ORDER BY l.device_id
"""


async def send_interval_changes(db: Database, server: NetworkServer, publish: Publish) -> int:
    """Queue a downlink for each device heard through `server` whose interval changed; how many were queued."""
    sent = 0
    for row in await db.fetch(_CHANGED, server.name):
        seconds = row["sample_interval_s"]
        detail: dict[str, Any] = {"sample_interval_s": seconds, "network_server": server.name}
        codec = CODECS.get(row["codec"])
        try:
            command = codec.interval_downlink(seconds) if codec is not None else None
        except CodecError as exc:
            await _record(db, row["device_id"], seconds, {**detail, "state": "unsupported", "reason": exc.reason})
            continue
        if command is None:
            reason = f"codec {row['codec']} has no reporting-interval command"
            await _record(db, row["device_id"], seconds, {**detail, "state": "unsupported", "reason": reason})
            continue
        f_port, data = command
        reference = new_downlink_id()
        try:
            topic, payload = downlink_message(
                server.kind, application=row["application_id"] or server.application, dev_eui=row["dev_eui"],
                device_name=row["ns_device_id"], f_port=f_port, data=data, confirmed=True, tenant=server.tenant,
                reference=reference)
        except EventError as exc:
            await _record(db, row["device_id"], seconds, {**detail, "state": "unsendable", "reason": exc.reason})
            continue
        if not publish(topic, payload, 1):
            log.warning("downlink to %s not queued: the connection to %s is down", row["device_id"], server.name)
            break
        detail.update(state="sent", id=reference, f_port=f_port, payload=data.hex())
        await _record(db, row["device_id"], seconds, detail, downlink=(reference, f_port, data))
        log.info("%s: reporting interval %d s sent as a downlink via %s", row["device_id"], seconds, server.name)
        sent += 1
    return sent


async def _record(db: Database, device_id: str, seconds: int, detail: dict[str, Any],
                  downlink: tuple[str, int, bytes] | None = None) -> None:
    async with db.transaction() as conn:
        if downlink is not None:
            reference, f_port, data = downlink
            await conn.execute(
                "INSERT INTO lorawan_downlinks (id, device_id, purpose, detail, f_port, payload) "
                "VALUES ($1::uuid, $2, 'sample_interval', $3::jsonb, $4, $5)",
                reference, device_id, json.dumps({"sample_interval_s": seconds}), f_port, data)
        await conn.execute("INSERT INTO device_events (device_id, action, detail) VALUES ($1, 'downlink', $2::jsonb)",
                           device_id, json.dumps(detail))
        await conn.execute("UPDATE lorawan_devices SET interval_sent_s = $2 WHERE device_id = $1", device_id, seconds)
