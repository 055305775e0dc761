"""The device registry, cached: reloaded every few seconds, unknown keys looked up once.

`CachedRegistry` is the mechanism (keys to registered devices, with loaders for all of them and
for a few); `RegistryCache` is native ingest's, by device id. The LoRaWAN integration keeps its
devices by DevEUI the same way (ingest/lorawan/store.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

from cityops.storage import Database
from cityops.storage.devices import RegisteredDevice, registered_devices

# A key the registry did not know is asked for again only after this long, so a stream of
# messages from an unregistered device costs one query, not one each.
UNKNOWN_RETRY_S = 5.0

T = TypeVar("T")


class CachedRegistry(Generic[T]):
    """Registered devices by key: all of them reloaded every `refresh_s` (`load_all`), a key not
    in the cache asked for (`load_some`) at most once per UNKNOWN_RETRY_S."""

    def __init__(self, refresh_s: float, load_all: Callable[[], Awaitable[Mapping[str, T]]],
                 load_some: Callable[[Sequence[str]], Awaitable[Mapping[str, T]]]):
        self._refresh_s = refresh_s
        self._load_all = load_all
        self._load_some = load_some
        self._devices: dict[str, T] = {}
        self._loaded_at = float("-inf")
        self._unknown_until: dict[str, float] = {}

    async def lookup(self, keys: Iterable[str]) -> Mapping[str, T]:
        """The registry, sure to hold every key in `keys` that is registered now."""
        now = time.monotonic()
        if now - self._loaded_at > self._refresh_s:
            self._devices = dict(await self._load_all())
            self._loaded_at = now
            self._unknown_until.clear()
        missing = [k for k in set(keys) if k not in self._devices and self._unknown_until.get(k, 0.0) <= now]
        if missing:
            self._devices.update(await self._load_some(missing))
            for key in missing:
                if key not in self._devices:
                    self._unknown_until[key] = now + UNKNOWN_RETRY_S
        return self._devices

    def remember(self, key: str, device: T) -> None:
        """What a commit wrote about a device: the cache holds it too."""
        self._devices[key] = device


class RegistryCache(CachedRegistry[RegisteredDevice]):
    """Native ingest's registry, by device id."""

    def __init__(self, db: Database, refresh_s: float):
        async def load(device_ids: Sequence[str] | None = None) -> dict[str, RegisteredDevice]:
            return {d.device_id: d for d in await registered_devices(db, device_ids)}
        super().__init__(refresh_s, load, load)
