"""The one adapter to a running NATS cluster (nats-py): the stream and consumer, the leaders.

`ensure_stream` is idempotent, so `cityops nats stream`, a test or a deployment step may run
it any number of times: it creates what is missing, updates what differs (the stream's
replicas, limits; the consumer's ack wait and pending limit) and leaves the rest.
JetStream answers 503 until the cluster has a meta leader (a majority of its nodes up);
`wait_for_jetstream` waits for that state instead of guessing a delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from collections.abc import Sequence
from typing import Literal

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.errors import APIError, NotFoundError

from cityops.errors import BrokerUnavailable
from cityops.nats_cluster.config import ConsumerSpec, StreamSpec

Outcome = Literal["created", "updated", "unchanged"]
log = logging.getLogger("cityops.nats_cluster")


def stream_config(spec: StreamSpec) -> StreamConfig:
    return StreamConfig(name=spec.name, subjects=list(spec.subjects), retention=RetentionPolicy.LIMITS,
                        storage=StorageType.FILE, num_replicas=spec.replicas, max_age=spec.max_age_s,
                        max_bytes=spec.max_bytes, max_msg_size=spec.max_msg_size, discard=DiscardPolicy.OLD)


def consumer_config(spec: ConsumerSpec) -> ConsumerConfig:
    return ConsumerConfig(durable_name=spec.durable, name=spec.durable, filter_subject=spec.filter_subject,
                          ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=spec.ack_wait_s,
                          max_ack_pending=spec.max_ack_pending)


class _Refused(Exception):
    """A node refused the user's credentials while connecting (raised out of nats-py's loop)."""


async def connect(servers: Sequence[str], user: str, password: str, *, name: str, ca_file: str | None = None,
                  inbox_prefix: str = "_INBOX", timeout_s: float = 10.0) -> NATS:
    """A client on the first node that answers (nats-py moves along the list on failure).

    A refused login ends the attempt at once with BrokerUnavailable. nats-py alone would go on
    for ever in a cluster: each node's INFO names the others, and a node dropped from the list
    after `max_reconnect_attempts` refusals is added again, fresh, by the next node's INFO
    (seen with nats-py 2.16 against three 2.9.10 nodes: a device on the NATS protocol kept
    retrying for minutes). The same password will not work on the next try."""
    tls = ssl.create_default_context(cafile=ca_file) if ca_file else None
    connecting = True

    async def on_error(exc: Exception) -> None:
        if connecting and "authorization violation" in str(exc).lower():
            raise _Refused(str(exc))
        log.warning("NATS %s (%s): %s", name, user, exc or type(exc).__name__)

    nc = NATS()
    try:
        await nc.connect(list(servers), user=user, password=password, name=name, tls=tls, error_cb=on_error,
                         inbox_prefix=inbox_prefix, connect_timeout=math.ceil(timeout_s), max_reconnect_attempts=3,
                         allow_reconnect=True)
    except _Refused as exc:
        with contextlib.suppress(Exception):
            await nc.close()
        raise BrokerUnavailable(f"the NATS node refused {user!r}: {exc}",
                                hint="check the user's password and that the node's users file names it "
                                     "(cityops nats users); devices may use MQTT only") from None
    except Exception as exc:  # nats-py raises its own and OSError alike
        with contextlib.suppress(Exception):
            await nc.close()
        raise BrokerUnavailable(f"no NATS node of {list(servers)} took {user!r}: {exc or type(exc).__name__}",
                                hint="check the URLs, the user's password and that a majority of nodes run") from None
    connecting = False
    return nc


async def wait_for_jetstream(js: JetStreamContext, *, timeout_s: float = 30.0) -> None:
    """Until the cluster has a meta leader: JetStream answers account info instead of 503."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await js.account_info()
            return
        except (APIError, TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"JetStream had no meta leader within {timeout_s:.0f} s",
                                        hint="a majority of the nodes (2 of 3) must run and reach each other "
                                             "on their cluster ports") from None
            await asyncio.sleep(0.1)


async def ensure_stream(js: JetStreamContext, stream: StreamSpec | None = None,
                        consumer: ConsumerSpec | None = None) -> tuple[Outcome, Outcome]:
    """The telemetry stream and ingest's consumer as specified: (stream outcome, consumer outcome)."""
    stream, consumer = stream or StreamSpec(), consumer or ConsumerSpec()
    want = stream_config(stream)
    try:
        have = (await js.stream_info(stream.name)).config
    except NotFoundError:
        await js.add_stream(want)
        stream_outcome: Outcome = "created"
    else:
        if _same_stream(have, want):
            stream_outcome = "unchanged"
        else:
            await js.update_stream(want)
            stream_outcome = "updated"
    want_consumer = consumer_config(consumer)
    try:
        current = (await js.consumer_info(consumer.stream, consumer.durable)).config
    except NotFoundError:
        await js.add_consumer(consumer.stream, want_consumer)
        return stream_outcome, "created"
    if (current.ack_wait, current.max_ack_pending, current.filter_subject) == (
            want_consumer.ack_wait, want_consumer.max_ack_pending, want_consumer.filter_subject):
        return stream_outcome, "unchanged"
    try:
        await js.add_consumer(consumer.stream, want_consumer)  # 2.9 updates a durable in place
    except APIError as exc:
        raise BrokerUnavailable(f"the consumer {consumer.durable!r} could not be updated: {exc}",
                                hint="delete it (nats consumer rm) and run this again: ingest resumes from "
                                     "the stream") from None
    return stream_outcome, "updated"


async def ensure_stream_when_ready(js: JetStreamContext, stream: StreamSpec | None = None,
                                   consumer: ConsumerSpec | None = None, *,
                                   timeout_s: float = 60.0) -> tuple[Outcome, Outcome]:
    """`ensure_stream` once JetStream can place three copies: right after a meta leader is
    elected the other peers may not have joined yet ("insufficient resources"), so ask again."""
    await wait_for_jetstream(js, timeout_s=timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await ensure_stream(js, stream, consumer)
        except (APIError, TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"the telemetry stream could not be placed: {exc}",
                                        hint="its replicas need that many nodes up and routed to each other") from None
            await asyncio.sleep(0.2)


def _same_stream(have: StreamConfig, want: StreamConfig) -> bool:
    return (sorted(have.subjects or []), have.num_replicas, have.max_age, have.max_bytes, have.storage,
            have.max_msg_size) == (sorted(want.subjects or []), want.num_replicas, want.max_age, want.max_bytes,
                                   want.storage, want.max_msg_size)


async def stream_info(js: JetStreamContext, name: str) -> StreamInfo:
    return await js.stream_info(name)


async def stream_leader(js: JetStreamContext, name: str) -> str | None:
    """The server name leading the stream's replicas (None while it elects one)."""
    info = await js.stream_info(name)
    return info.cluster.leader if info.cluster is not None else None


async def consumer_leader(js: JetStreamContext, stream: str, durable: str) -> str | None:
    info = await js.consumer_info(stream, durable)
    return info.cluster.leader if info.cluster is not None else None


async def replicas_current(js: JetStreamContext, name: str) -> int:
    """How many of the stream's copies are up to date: the leader and its current followers."""
    info = await js.stream_info(name)
    if info.cluster is None or info.cluster.leader is None:
        return 0
    return 1 + sum(1 for peer in info.cluster.replicas or [] if peer.current and not peer.offline)
