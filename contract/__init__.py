"""The contract between the devices and the platform: what both sides must agree on, and
nothing else. Standard library, msgspec and cryptography only; the agent's distribution
(cityops-agent) and the platform both install it (docs/architecture.md).

    telemetry   topics, payloads and their checks (docs/contract.md)
    releases    the release manifest, update offers and reports, and the signature checks
    urls        MQTT connection details; URLs printed without their passwords
    errors      the root of every error tree
"""
