"""The NATS benchmark's simulated devices: one process publishing frog telemetry, QoS 1, MQTT 3.1.1
(all NATS's MQTT listener speaks) to every node of the cluster at once, the devices spread over them.

    BENCH_NATS_PASSWORD=... python -m benchmarks.ingest_nats_publisher MQTT_URLS USER DEVICE_PREFIX DEVICES
        MESSAGES READINGS [RATE [VERSION]]

MQTT_URLS is comma separated; USER the benchmark's publisher account (benchmarks/nats_cluster.py).
As in benchmarks/ingest_publisher.py: each reading's timestamp is the moment its message is
published, RATE is messages per second (0: as fast as the nodes take them), VERSION 2 asks for
receipts. MQTT 3.1.1 has no "no matching subscribers": the stream takes every message. Prints
one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from benchmarks.ingest_publisher import telemetry

MAX_OUTSTANDING = 20_000  # per connection: message ids are 16 bits


def main(argv: list[str]) -> int:
    urls, user, prefix = argv[0].split(","), argv[1], argv[2]
    devices, messages, readings = int(argv[3]), int(argv[4]), int(argv[5])
    rate = float(argv[6]) if len(argv) > 6 else 0.0
    version = int(argv[7]) if len(argv) > 7 else 1
    clients = []
    for n, url in enumerate(urls):
        parts = urlsplit(url)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub{n}", protocol=mqtt.MQTTv311)
        client.username_pw_set(user, os.environ["BENCH_NATS_PASSWORD"])
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        while not client.is_connected():  # one thread drives every client's loop (as the MQTT publisher)
            client.loop(0.1)
        clients.append(client)
    outstanding = [0] * len(clients)

    def acked(index: int) -> mqtt.CallbackOnPublish:
        def on_publish(_c: object, _u: object, _mid: int, _rc: object, _p: object) -> None:
            outstanding[index] -= 1
        return on_publish

    for index, client in enumerate(clients):
        client.on_publish = acked(index)
    started = time.perf_counter()
    infos = []
    for n, (topic, payload) in telemetry(prefix, devices, messages, readings, rate, version):
        index = (n % devices) % len(clients)  # a device always on the same node
        while outstanding[index] >= MAX_OUTSTANDING:
            clients[index].loop(0.05)
        outstanding[index] += 1
        infos.append(clients[index].publish(topic, payload, qos=1))
        if n % 20 == 0:
            for client in clients:
                client.loop(0)
    deadline = time.monotonic() + 120
    while not all(info.is_published() for info in infos) and time.monotonic() < deadline:
        for client in clients:
            client.loop(0.01)
    elapsed = time.perf_counter() - started
    unacked = sum(1 for info in infos if not info.is_published())
    for client in clients:
        client.disconnect()
    print(json.dumps({"messages": messages, "seconds": elapsed, "unacknowledged": unacked}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
