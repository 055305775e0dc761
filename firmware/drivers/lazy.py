"""Hardware libraries (the `pi` extra) are imported only when a driver first needs one."""

from __future__ import annotations

import importlib
from types import ModuleType

from firmware.errors import SensorAbsent

PI_EXTRA = "pip install 'cityops[pi]'"


def hardware_module(module: str, sensor: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SensorAbsent(sensor, f"{module} is not installed ({PI_EXTRA})") from None
