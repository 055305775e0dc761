"""Ingest: MQTT telemetry into the database, each reading accepted exactly once."""
