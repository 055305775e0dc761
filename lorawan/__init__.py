"""LoRaWAN sensors through a network server: ChirpStack v4 and The Things Stack v3 (docs/lorawan.md).

Pure parts (no I/O): `events` reads the network servers' MQTT messages, `codecs` turns a
device's bytes (or the server's decoded JSON, through a field mapping) into readings,
`frames` judges duplicates, replays and frame-counter gaps. The adapters (`store`,
`service`, `downlinks`) write through the same path as native telemetry.
"""
