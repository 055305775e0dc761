"""Sensor drivers: pure decoders (tested with real sample data) plus thin hardware adapters.

Hardware libraries (smbus2, gpiozero, pyserial: the `pi` extra) are imported only when a
driver first touches its device.
"""

from firmware.drivers.base import Battery, Climate, Distance, Driver, Position, Temperature, Tilt

__all__ = ["Battery", "Climate", "Distance", "Driver", "Position", "Temperature", "Tilt"]
