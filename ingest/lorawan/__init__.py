"""`cityops lorawan run`: uplinks from LoRaWAN network servers into the readings tables (docs/lorawan.md).

The same collector, writer and acknowledgements as native ingest (ingest/service.py), with
the network server's MQTT integration as the source: `accept` judges a batch of the
servers' messages (pure), `store` reads and writes the LoRaWAN tables in the commit's
transaction, `service` runs one consumer per network server, `downlinks` sends reporting
interval changes.
"""
