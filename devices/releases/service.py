"""The release service: rollout ticks and the device-report listener (adapters over MQTT
and the database).

A tick looks at the open rollout: it offers the release to the devices the current stage
reaches (a retained config message with the rollout's signed `update` object beside the
registry's config fields, so calibration and bin geometry stay as they are), then lets
staging.decide advance, finish, hold or pause the rollout. A rollout whose offer has expired
(or was never signed) is paused: devices would refuse it. `cityops release run` ticks every few seconds and
listens to the status topic for the devices' JSON reports (online/offline are ignored),
under a persistent MQTT session so reports sent while it was down are delivered later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import msgspec
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityops.errors import BrokerUnavailable
from cityops.mqtt import MqttTarget
from cityops.periodic import Periodic, Task
from cityops.settings import redact_url
from cityops.storage import Database
from contract.releases import UpdateOffer, decode_report
from contract.telemetry import STATUS_FILTER, DeviceTopic, TelemetryError, config_topic
from devices.releases import store
from devices.releases.cohort import members, stage_count
from devices.releases.staging import Decision, decide
from devices.releases.store import Rollout

log = logging.getLogger("devices.releases.service")

Publish = Callable[[str, bytes], Awaitable[None]]


def download_path(version: str) -> str:
    """Where the API serves a release; devices put their own configured base in front."""
    return f"/releases/{version}/agent.tar.gz"


def config_payload(registry_config: dict[str, Any], offer: UpdateOffer | None) -> bytes:
    config = dict(registry_config)
    if offer is not None:
        config["update"] = msgspec.to_builtins(offer)
    return json.dumps(config, separators=(",", ":")).encode()


@dataclass(frozen=True)
class TickResult:
    rollout_id: int | None
    offered: list[str]
    decision: Decision | None
    state: str | None


async def offer_to(db: Database, publish: Publish, rollout: Rollout, offer: UpdateOffer,
                   device_ids: list[str], stage_index: int) -> None:
    """Publish the signed offer to these devices (retained), then record them as targets: a crash
    in between offers again on the next tick, which changes nothing for a device."""
    configs = await store.device_configs(db, device_ids)
    for device_id in device_ids:
        await publish(config_topic(device_id), config_payload(configs.get(device_id, {"v": 1}), offer))
    await store.add_targets(db, rollout.rollout_id, stage_index, device_ids)


def _unofferable(rollout: Rollout, offer: UpdateOffer | None, now: datetime) -> str | None:
    if offer is None:
        return f"rollout {rollout.rollout_id} has no signed offer (started before offers were signed): cancel it " \
               "and start it again with --key"
    if now >= offer.expires_at:
        return f"the signed offer expired at {offer.expires_at.isoformat()}: devices refuse it; start a new rollout"
    return None


async def tick(db: Database, publish: Publish) -> TickResult:
    rollout = await store.open_rollout(db)
    if rollout is None:
        return TickResult(None, [], None, None)
    if rollout.state == "paused":
        return TickResult(rollout.rollout_id, [], None, "paused")
    release = await store.get_release(db, rollout.version)
    offer = rollout.offer(release)
    stop = _unofferable(rollout, offer, datetime.now(UTC))
    if stop is not None or offer is None:
        await store.update_rollout(db, rollout.rollout_id, state="paused", reason=stop)
        log.warning("rollout %d paused: %s", rollout.rollout_id, stop)
        return TickResult(rollout.rollout_id, [], None, "paused")
    cohort = members(rollout.cohort, await store.candidates(db), salt=rollout.version)
    offered: list[str] = []
    stage_index = rollout.stage_index
    decision: Decision | None = None
    while True:
        reach = cohort[:stage_count(len(cohort), rollout.policy.stages[stage_index])]
        targeted = await store.targets(db, rollout.rollout_id)
        new = [d for d in reach if d not in targeted]
        if new:
            await offer_to(db, publish, rollout, offer, new, stage_index)
            offered += new
            log.info("rollout %d (%s): offered to %d more devices (stage %d)", rollout.rollout_id, rollout.version,
                     len(new), stage_index + 1)
        results = await store.outcomes(db, rollout)
        stage = store.tally([step for s, step in results.values() if s == stage_index])
        overall = store.tally([step for _s, step in results.values()])
        decision = decide(rollout.policy, stage_index, stage, overall)
        if decision.action != "advance":
            break
        stage_index += 1
        await store.update_rollout(db, rollout.rollout_id, stage_index=stage_index, reason=decision.reason)
        log.info("rollout %d: %s", rollout.rollout_id, decision.reason)
    state = {"pause": "paused", "complete": "completed"}.get(decision.action, "active")
    await store.update_rollout(db, rollout.rollout_id, state=state, reason=decision.reason)  # type: ignore[arg-type]
    if decision.action == "pause":
        log.warning("rollout %d paused: %s", rollout.rollout_id, decision.reason)
    elif decision.action == "complete":
        log.info("rollout %d completed: %s", rollout.rollout_id, decision.reason)
    return TickResult(rollout.rollout_id, offered, decision, state)


async def handle_status(db: Database, topic: str, payload: bytes) -> bool:
    """A status-topic message: store it when it is an update report; True when stored."""
    report = decode_report(payload)
    if report is None:
        return False
    try:
        device_id = DeviceTopic.parse(topic).device_id
    except TelemetryError:
        return False
    return await store.record_report(db, device_id, report)


# --- MQTT -------------------------------------------------------------------------------------

def _client(url: str, client_id: str | None = None, *, persistent: bool = False) -> aiomqtt.Client:
    target = MqttTarget.from_url(url)
    kwargs: dict[str, Any] = {}
    if persistent:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 7 * 24 * 3600
        kwargs.update(clean_start=False, properties=properties)
    return aiomqtt.Client(**target.client_kwargs(), identifier=client_id, protocol=aiomqtt.ProtocolVersion.V5,
                          **kwargs)


ROLLOUT_CLIENT_ID = "cityops-releases-rollout"  # `cityops release rollout` (service.releases-rollout)


@contextlib.asynccontextmanager
async def publisher(url: str, client_id: str = ROLLOUT_CLIENT_ID) -> Any:
    """An async publish(topic, payload) for retained QoS 1 config messages, under the client id
    the broker binds to service.releases-rollout (never the service's own: that would end its session)."""
    try:
        async with _client(url, client_id) as client:
            async def publish(topic: str, payload: bytes) -> None:
                await client.publish(topic, payload, qos=1, retain=True)

            yield publish
    except aiomqtt.MqttError as exc:
        raise BrokerUnavailable(f"cannot publish rollout config to {redact_url(url)} as client id {client_id} "
                                f"(the account service.releases-rollout): {exc}") from None


async def _store_reports(db: Database, client: aiomqtt.Client) -> None:
    async for message in client.messages:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        if await handle_status(db, str(message.topic), payload):
            log.info("report from %s: %s", message.topic, payload[:200])


async def listen_reports(db: Database, url: str, client_id: str = "cityops-releases",
                         ready: asyncio.Event | None = None) -> None:
    """Store every update report the devices send, until cancelled."""
    try:
        async with _client(url, client_id, persistent=True) as client:
            await client.subscribe(STATUS_FILTER, qos=1)
            if ready is not None:
                ready.set()
            await _store_reports(db, client)
    except aiomqtt.MqttError as exc:
        raise BrokerUnavailable(f"the release report listener lost {redact_url(url)}: {exc}") from None


async def run(db: Database, url: str, every_s: float, client_id: str = "cityops-releases",
              ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    """The release service: the report listener and a tick every `every_s` seconds, over one
    connection (the broker binds service.releases to this one client id), until `stop`. A
    failed tick (the database away) is retried with a backoff (cityops/periodic.py)."""
    try:
        async with _client(url, client_id, persistent=True) as client:
            await client.subscribe(STATUS_FILTER, qos=1)
            if ready is not None:
                ready.set()
            listener = asyncio.create_task(_store_reports(db, client), name="release-reports")

            async def publish(topic: str, payload: bytes) -> None:
                await client.publish(topic, payload, qos=1, retain=True)

            async def advance() -> None:
                if listener.done():
                    listener.result()  # raise what stopped it (BrokerUnavailable: fatal, a restart mends it)
                result = await tick(db, publish)
                if result.decision is not None:
                    log.debug("rollout %s: %s", result.rollout_id, result.decision.reason)

            try:
                await Periodic([Task("rollouts", advance)], every_s, fatal=(BrokerUnavailable,)).run(
                    stop or asyncio.Event())
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
    except aiomqtt.MqttError as exc:
        raise BrokerUnavailable(f"the release service lost {redact_url(url)}: {exc}") from None
