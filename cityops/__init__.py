"""CityOps core: settings, storage and migrations, the embedded services, what every
service stands on.

The services (ingest, devices, alerts, rules' runners), the API (ops_api) and the
`cityops` command (cityops_cli) sit above this package and depend on it; it depends on
none of them (the import contracts in .importlinter check it; docs/architecture.md).
"""

__version__ = "0.1.0"
