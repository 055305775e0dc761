"""The NATS JetStream cluster, a second broker transport beside Mosquitto (issue 26, docs/nats.md).

`config` is the cluster's shape as pure values and text (subjects, the telemetry stream,
ingest's consumer, each node's config file); `jetstream` is the one adapter that talks to a
running cluster (nats-py): the stream and consumer made idempotently, the leaders found.
Who may do what on it is the devices package's (`devices/nats_auth.py`): the core never
reads the registry.
"""
