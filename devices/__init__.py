"""Devices: the registry, provisioning with broker credentials, rotation, health.

    spec, area         what a device is and where it may be (pure validation)
    registry           add / update / move / rotate / retire in the database, audited
    secrets            random secrets, stored only as Mosquitto `$7$` hashes
    broker_auth        Mosquitto password and ACL files from the registry, SIGHUP
    bulk               CSV import: a pure plan, then all or nothing
    agent_config       the agent's TOML for the installer
    health             one health state with reasons (pure); health_query reads the data
    cli                `cityops device ...` (register(commands))

See docs/devices.md.
"""
