"""The LoRaWAN integration's exceptions.

    LorawanError                anything the integration raises on purpose
     +-- EventError             a network server's message that cannot be read (reason)
     +-- CodecError             bytes or decoded JSON a codec cannot turn into readings (reason)
     +-- UnknownCodec           a codec name that is not one of ours
     +-- MappingError           a field mapping that is not well formed

A bad uplink is not an exception that travels: it becomes a dead letter with its reason.
"""

from __future__ import annotations

from cityops.errors import CityOpsError


class LorawanError(CityOpsError):
    pass


class _Reasoned(LorawanError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class EventError(_Reasoned):
    """A message from the network server that is not a well-formed event."""


class CodecError(_Reasoned):
    """A payload the device's codec cannot decode (unknown port, wrong length, sensor fault)."""


class UnknownCodec(LorawanError):
    hint = "`cityops lorawan codecs` lists the codecs; a mapping is named map:<profile>"


class MappingError(LorawanError):
    hint = "a mapping is JSON: {\"kind\": \"frog\", \"fields\": {\"air_temp_c\": \"temperature\", ...}}"
