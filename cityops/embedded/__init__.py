"""Embedded services for the demo and tests: PostgreSQL from a wheel, an MQTT broker."""
