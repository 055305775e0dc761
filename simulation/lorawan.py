"""Simulated LoRaWAN devices and network servers: the bytes a sensor sends, and the MQTT
messages ChirpStack v4 and The Things Stack v3 publish for it (for the demo, the benchmark
and the tests; never shipped in a production package).

The byte layouts are the vendors' (docs/lorawan-codecs.md); `lorawan.codecs` reads them back.
The event JSON is what the servers document (ChirpStack "Event types", The Things Stack
"Data formats"), with the fields `lorawan.events` reads.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# --- device payloads ------------------------------------------------------------------

def em300_th(air_temp_c: float, rh_pct: float, battery_pct: int = 95) -> tuple[int, bytes]:
    """Milesight EM300-TH on port 85: battery, temperature (0.1 °C), humidity (0.5 %RH) channels."""
    return 85, (bytes([0x01, 0x75, battery_pct]) + bytes([0x03, 0x67]) + struct.pack("<h", round(air_temp_c * 10))
                + bytes([0x04, 0x68, round(rh_pct * 2)]))


def ldds75(distance_mm: int, battery_mv: int = 3600, temp_c: float | None = None) -> tuple[int, bytes]:
    """Dragino LDDS75 on port 2: battery mV, distance mm, interrupt flag, DS18B20, sensor flag."""
    temp = 0x7FFF if temp_c is None else round(temp_c * 10) & 0xFFFF
    return 2, struct.pack(">HHBHB", battery_mv & 0x3FFF, distance_mm, 0, temp, 1)


def em310_udl(distance_mm: int, battery_pct: int = 95, tilted: bool = False) -> tuple[int, bytes]:
    """Milesight EM310-UDL on port 85: battery (%), distance (mm, uint16 LE) and position (0 normal, 1 tilt)."""
    return 85, (bytes([0x01, 0x75, battery_pct]) + bytes([0x03, 0x82]) + struct.pack("<H", distance_mm)
                + bytes([0x04, 0x00, 1 if tilted else 0]))


def lsn50(surface_temp_c: float, battery_mv: int = 3600) -> tuple[int, bytes]:
    """Dragino LSN50 on port 2, MOD1, a DS18B20 probe and no I²C sensor."""
    return 2, struct.pack(">HhHBHH", battery_mv, round(surface_temp_c * 10), 0, 0, 0x7FFF, 0x7FFF)


# --- network-server messages ----------------------------------------------------------

@dataclass(frozen=True)
class SimulatedDevice:
    dev_eui: str
    name: str
    application_id: str = "00000000-0000-0000-0000-00000000c17e"
    profile: str = "cityops-demo"
    dev_addr: str = "260b1234"


def _time(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def chirpstack_uplink(device: SimulatedDevice, *, f_cnt: int, port_and_bytes: tuple[int, bytes], at: datetime,
                      gateways: int = 1, dedup_id: str | None = None, decoded: dict[str, Any] | None = None
                      ) -> tuple[str, bytes]:
    """ChirpStack v4's `up` event for one uplink: topic and JSON (integration.UplinkEvent, camelCase)."""
    f_port, data = port_and_bytes
    body: dict[str, Any] = {
        "deduplicationId": dedup_id or str(uuid.uuid4()), "time": _time(at),
        "deviceInfo": {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Council",
                       "applicationId": device.application_id, "applicationName": "cityops",
                       "deviceProfileId": "2a1c2bd4-9b0c-4f8e-a4a2-0e2b5f5b1e11", "deviceProfileName": device.profile,
                       "deviceName": device.name, "devEui": device.dev_eui, "tags": {}},
        "devAddr": device.dev_addr, "adr": True, "dr": 5, "fCnt": f_cnt, "fPort": f_port, "confirmed": False,
        "data": base64.b64encode(data).decode(),
        "rxInfo": [{"gatewayId": f"0016c001ff1{index:05x}", "uplinkId": 1000 + index, "rssi": -70 - 7 * index,
                    "snr": 9.5 - index, "context": "AAAAAA==", "metadata": {}} for index in range(gateways)],
        "txInfo": {"frequency": 868100000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7,
                                                                   "codeRate": "CR_4_5"}}},
    }
    if decoded is not None:
        body["object"] = decoded
    return (f"application/{device.application_id}/device/{device.dev_eui}/event/up",
            json.dumps(body, separators=(",", ":")).encode())


def chirpstack_event(device: SimulatedDevice, event: str, at: datetime, **fields: Any) -> tuple[str, bytes]:
    """Another ChirpStack event (`status`, `join`, `ack`, `txack`) with its own fields."""
    body = {"time": _time(at), "deviceInfo": {"applicationId": device.application_id, "deviceName": device.name,
                                              "devEui": device.dev_eui}, **fields}
    return (f"application/{device.application_id}/device/{device.dev_eui}/event/{event}",
            json.dumps(body, separators=(",", ":")).encode())


def tts_uplink(device: SimulatedDevice, *, application: str, f_cnt: int, port_and_bytes: tuple[int, bytes],
               at: datetime, tenant: str | None = None, decoded: dict[str, Any] | None = None) -> tuple[str, bytes]:
    """The Things Stack v3's `up` message (Data formats, "Uplink messages"): topic and JSON."""
    f_port, data = port_and_bytes
    owner = f"{application}@{tenant}" if tenant else application
    message: dict[str, Any] = {
        "session_key_id": "AXA50...", "f_port": f_port, "f_cnt": f_cnt, "frm_payload": base64.b64encode(data).decode(),
        "rx_metadata": [{"gateway_ids": {"gateway_id": "council-gw-1"}, "rssi": -81, "channel_rssi": -81,
                         "snr": 7.25}],
        "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}}, "frequency": "868100000"},
        "received_at": _time(at), "consumed_airtime": "0.061696s",
    }
    if decoded is not None:
        message["decoded_payload"] = decoded
    body = {"end_device_ids": {"device_id": device.name, "application_ids": {"application_id": application},
                               "dev_eui": device.dev_eui.upper(), "dev_addr": device.dev_addr.upper()},
            "correlation_ids": [f"as:up:{uuid.uuid4().hex.upper()}"], "received_at": _time(at),
            "uplink_message": message}
    return f"v3/{owner}/devices/{device.name}/up", json.dumps(body, separators=(",", ":")).encode()
