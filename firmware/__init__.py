"""The device agent that runs on a Raspberry Pi: drivers, spool, MQTT publishing."""
