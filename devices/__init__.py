"""Devices: the registry, provisioning with broker credentials, health."""
