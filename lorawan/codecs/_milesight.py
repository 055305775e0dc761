"""Milesight's channel/type TLV frames, shared by the EM300 and EM310 codecs.

A frame is a run of [channel id][channel type][value], the value's length fixed by the
pair (Milesight-IoT/SensorDecoders). Device-information channels (0xFF ..) and replies to
downlinks (0xFE/0xFF ..) are skipped by their documented lengths; any other pair the codec
does not know is a CodecError naming it, since its length is unknown and the rest of the
frame cannot be read.
"""

from __future__ import annotations

from collections.abc import Iterator

from lorawan.codecs.base import check_interval, need
from lorawan.errors import CodecError

PORT = 85  # uplinks and downlinks (EM300-TH/EM310-UDL user guides; TTN lorawan-devices examples)
REPORT_INTERVAL = b"\xff\x03"  # + uint16 LE seconds (the vendor's encoder: setReportInterval)

# (channel id, channel type) -> value length: device information, the same on every EM300/EM310.
DEVICE_INFO: dict[tuple[int, int], int] = {
    (0xFF, 0x01): 1,   # protocol (IPSO) version
    (0xFF, 0x09): 2,   # hardware version
    (0xFF, 0x0A): 2,   # firmware version
    (0xFF, 0xFF): 2,   # TSL version
    (0xFF, 0x16): 8,   # serial number
    (0xFF, 0x0F): 1,   # LoRaWAN class
    (0xFF, 0xFE): 1,   # reset event
    (0xFF, 0x0B): 1,   # device status (power on)
}


def channels(data: bytes, known: dict[tuple[int, int], int]) -> Iterator[tuple[int, int, bytes]]:
    """(channel id, channel type, value) for each channel in a frame."""
    if not data:
        raise CodecError("empty payload")
    offset, size = 0, len(data)
    while offset < size:
        if offset + 2 > size:
            need(data, offset, 2, "a channel header")  # raises, naming what was cut short
        channel, kind = data[offset], data[offset + 1]
        length = known.get((channel, kind))
        if length is None:
            raise CodecError(f"unknown channel 0x{channel:02x} type 0x{kind:02x} at offset {offset}")
        end = offset + 2 + length
        if end > size:  # the message is built only for the error
            need(data, offset + 2, length, f"channel 0x{channel:02x} 0x{kind:02x}")
        yield channel, kind, data[offset + 2:end]
        offset = end


def interval_downlink(name: str, seconds: int, high: int) -> tuple[int, bytes]:
    check_interval(name, seconds, 1, high)
    return PORT, REPORT_INTERVAL + seconds.to_bytes(2, "little")
