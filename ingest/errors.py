"""Ingest's exceptions.

    IngestError                 anything ingest raises on purpose
     +-- BrokerError            the broker refused us or went away (reason, reconnect or stop)

A bad message is not an exception that travels: it becomes a dead letter with a reason.
Database trouble arrives as cityops.errors.StorageError and is retried with backoff.
"""

from __future__ import annotations

from cityops.errors import CityOpsError


class IngestError(CityOpsError):
    pass


class BrokerError(IngestError):
    hint = "check CITYOPS_MQTT_URL and the ingest account's rights on the broker"
