"""The benchmark's simulated devices: a separate process publishing frog telemetry, QoS 1.

    python -m benchmarks.ingest_publisher URL DEVICE_PREFIX DEVICES MESSAGES READINGS [RATE [VERSION]]

Each reading's timestamp is the moment its message is published (made unique per
device), so the database's `received_at - ts` is the publish-to-commit latency. RATE
is messages per second (0: as fast as the broker takes them); VERSION 2 asks for receipts
(the benchmark counts them as a device would). Like an agent, it sends a
message again when the broker answers "no matching subscribers" (MQTT 5 reason 0x10: a
consumer not subscribed yet). Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from cityops.mqtt import MqttTarget
from contract.telemetry import NO_MATCHING_SUBSCRIBERS, FrogBatch, FrogReading, encode_batch, telemetry_topic

MAX_OUTSTANDING = 50_000


def telemetry(prefix: str, devices: int, messages: int, readings: int, rate: float,
              version: int) -> Iterator[tuple[int, tuple[str, bytes]]]:
    """The stream both benchmarks' publishers send: (n, (topic, payload)), device n % devices,
    paced at `rate` messages/s (0: flat out), each reading stamped as its message is made
    (unique per device, so `received_at - ts` is the publish-to-commit latency)."""
    ids = [f"{prefix}-{i:04d}" for i in range(devices)]
    last: dict[str, datetime] = {}
    started = time.perf_counter()
    for n in range(messages):
        if rate:
            ahead = started + n / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        device = ids[n % devices]
        now = max(datetime.now(UTC), last.get(device, datetime.min.replace(tzinfo=UTC)) + timedelta(microseconds=1))
        stamps = [now + timedelta(microseconds=i) for i in range(readings)]
        last[device] = stamps[-1]
        batch = FrogBatch(v=version, device_id=device, seq=n // devices, fw="bench", readings=[
            FrogReading(ts=ts, air_temp_c=20.0, rh_pct=55.0) for ts in stamps])
        yield n, (telemetry_topic(device), encode_batch(batch))


def publish_stream(url: str, stream: Iterable[tuple[str, bytes]], *, resend: bool = True) -> dict[str, float]:
    """Publish each (topic, payload) at QoS 1, flat out, and wait for every PUBACK; with `resend`, send
    again what the broker answered "no matching subscribers", as an agent does. Returns how many
    were published, in how many seconds, resent, and answered "no matching subscribers" at the end."""
    target = MqttTarget.from_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(target.hostname, target.port)
    # One thread drives the network loop between publishes: paho's background thread
    # would spend most of the time fighting this one for the client's locks.
    while not client.is_connected():
        client.loop(0.1)
    undelivered: set[int] = set()
    outstanding = [0]  # published and not yet acknowledged

    def on_publish(_c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        outstanding[0] -= 1
        if rc.value == NO_MATCHING_SUBSCRIBERS:
            undelivered.add(mid)

    def publish(message: tuple[str, bytes]) -> mqtt.MQTTMessageInfo:
        # message ids are 16 bits: paho (2.2) refuses one still in use, so keep fewer outstanding
        while outstanding[0] >= MAX_OUTSTANDING:
            client.loop(0.05)
        outstanding[0] += 1
        return client.publish(*message, qos=1)

    client.on_publish = on_publish
    started = time.perf_counter()
    infos = []
    for n, message in enumerate(stream):
        infos.append((publish(message), message))
        if n % 20 == 0:
            client.loop(0)
    published, resent, no_subscriber = len(infos), 0, 0
    deadline = time.monotonic() + 120
    while infos and time.monotonic() < deadline:
        while not all(info.is_published() for info, _ in infos) and time.monotonic() < deadline:
            client.loop(0.05)
        again = [message for info, message in infos if info.mid in undelivered]
        undelivered.clear()
        if not resend:
            no_subscriber = len(again)
            break
        resent += len(again)
        if again:
            client.loop(0.5)
        infos = [(publish(message), message) for message in again]
    elapsed = time.perf_counter() - started
    client.disconnect()
    return {"published": published, "seconds": elapsed, "resent": resent, "no_subscriber": no_subscriber}


def main(argv: list[str]) -> int:
    url, prefix, devices, messages, readings = argv[0], argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    rate = float(argv[5]) if len(argv) > 5 else 0.0
    version = int(argv[6]) if len(argv) > 6 else 1  # 2: the messages ask for receipts
    done = publish_stream(url, (message for _, message in telemetry(prefix, devices, messages, readings, rate,
                                                                   version)))
    print(json.dumps({"messages": messages, "seconds": done["seconds"], "resent": done["resent"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
