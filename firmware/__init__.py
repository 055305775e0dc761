"""The device agent that runs on a Raspberry Pi: drivers, spool, MQTT publishing."""

# the factory version; a release build stamps its own here (devices/releases/build.py)
__version__ = "0.1.0"
