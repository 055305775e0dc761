"""Battery voltage from the kernel's power_supply class (UPS HATs, PiJuice, fuel gauges)."""

from __future__ import annotations

from pathlib import Path

from firmware.drivers.base import Battery
from firmware.drivers.sysfs import read_text
from firmware.errors import ImplausibleValue

POWER_SUPPLY_ROOT = Path("/sys/class/power_supply")


def parse_voltage_now(text: str, sensor: str = "battery") -> Battery:
    """`voltage_now` is in microvolts."""
    try:
        volts = int(text.strip()) / 1_000_000
    except ValueError:
        raise ImplausibleValue(sensor, f"voltage_now is not a number: {text.strip()!r}") from None
    if not 0.0 < volts < 60.0:
        raise ImplausibleValue(sensor, f"{volts:g} V is not a battery voltage")
    return Battery(round(volts, 3))


class PowerSupplyBattery:
    def __init__(self, name: str, supply: str = "battery", root: Path = POWER_SUPPLY_ROOT):
        self.name = name
        self.path = root / supply / "voltage_now"

    def read(self) -> Battery:
        return parse_voltage_now(read_text(self.name, self.path), self.name)

    def close(self) -> None:
        pass
