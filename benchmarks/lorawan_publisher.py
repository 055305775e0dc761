"""The LoRaWAN benchmark's network server: a separate process publishing ChirpStack v4 uplinks, QoS 1.

    python -m benchmarks.lorawan_publisher URL DEVICE_PREFIX DEV_EUI_PREFIX DEVICES MESSAGES DUPLICATE_EVERY

Uplink n comes from device n % DEVICES (`lorawan_device`): even devices are Milesight EM300-TH
(homes), odd ones Dragino LDDS75 (bins), one reading each. Its frame counter counts per device
and its time is the moment it is made (unique per device), so a reading's `received_at - ts`
is the publish-to-commit latency. Every DUPLICATE_EVERY-th uplink (0: none) is heard by two
gateways and published twice, the same event (deduplicationId, fCnt) again right after it, as
two ChirpStack integrations or a redelivery would; never the last one, so when the last
uplink is stored every duplicate has been judged. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from benchmarks.ingest_publisher import publish_stream
from simulation.lorawan import SimulatedDevice, chirpstack_uplink, em300_th, ldds75

CODECS = ("milesight-em300-th", "dragino-ldds75")  # device n: CODECS[n % 2]


def lorawan_device(prefix: str, dev_eui_prefix: str, n: int) -> tuple[SimulatedDevice, str]:
    """Device n of the run: its simulated identity and its codec."""
    return SimulatedDevice(dev_eui=f"{dev_eui_prefix}{n:0{16 - len(dev_eui_prefix)}x}",
                           name=f"{prefix}-{n:04d}"), CODECS[n % 2]


def is_duplicated(n: int, messages: int, every: int) -> bool:
    return every > 0 and n % every == every // 2 and n < messages - 1


def uplinks(prefix: str, dev_eui_prefix: str, devices: int, messages: int,
            duplicate_every: int) -> Iterator[tuple[str, bytes]]:
    """The stream: each uplink as (topic, payload), a duplicated one twice in a row."""
    fleet = [lorawan_device(prefix, dev_eui_prefix, n) for n in range(devices)]
    last = datetime.min.replace(tzinfo=UTC)
    for n in range(messages):
        device, codec = fleet[n % devices]
        last = max(datetime.now(UTC), last + timedelta(microseconds=1))  # unique across the run
        payload = em300_th(20.0 + n % 50 / 10, 55.0) if codec == CODECS[0] else ldds75(400 + n % 500)
        duplicated = is_duplicated(n, messages, duplicate_every)
        message = chirpstack_uplink(device, f_cnt=n // devices, port_and_bytes=payload, at=last,
                                    gateways=2 if duplicated else 1)
        yield message
        if duplicated:
            yield message


def main(argv: list[str]) -> int:
    url, prefix, dev_eui_prefix = argv[0], argv[1], argv[2]
    devices, messages, duplicate_every = int(argv[3]), int(argv[4]), int(argv[5])
    done = publish_stream(url, uplinks(prefix, dev_eui_prefix, devices, messages, duplicate_every), resend=False)
    print(json.dumps({"published": done["published"], "seconds": done["seconds"],
                      "no_subscriber": done["no_subscriber"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
