"""CityOps core: settings, storage, the embedded services and the `cityops` command.

The domain packages (ingest, devices, firmware, rules, alerts, ops_api, dashboards)
sit beside this one and depend on it; it depends on none of them.
"""

__version__ = "0.1.0"
