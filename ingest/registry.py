"""The device registry, cached: reloaded every few seconds, unknown ids looked up once."""

from __future__ import annotations

import time
from collections.abc import Mapping

from cityops.storage import Database
from cityops.storage.devices import RegisteredDevice, registered_devices

# An id the registry did not know is asked for again only after this long, so a
# stream of messages from an unregistered device costs one query, not one each.
UNKNOWN_RETRY_S = 5.0


class RegistryCache:
    def __init__(self, db: Database, refresh_s: float):
        self._db = db
        self._refresh_s = refresh_s
        self._devices: dict[str, RegisteredDevice] = {}
        self._loaded_at = float("-inf")
        self._unknown_until: dict[str, float] = {}

    async def lookup(self, device_ids: set[str]) -> Mapping[str, RegisteredDevice]:
        """The registry, sure to hold every id in `device_ids` that is registered now."""
        now = time.monotonic()
        if now - self._loaded_at > self._refresh_s:
            self._devices = {d.device_id: d for d in await registered_devices(self._db)}
            self._loaded_at = now
            self._unknown_until.clear()
        missing = [i for i in device_ids
                   if i not in self._devices and self._unknown_until.get(i, 0.0) <= now]
        if missing:
            for device in await registered_devices(self._db, missing):
                self._devices[device.device_id] = device
            for device_id in missing:
                if device_id not in self._devices:
                    self._unknown_until[device_id] = now + UNKNOWN_RETRY_S
        return self._devices
