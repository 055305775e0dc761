"""Checking the broker; the URL parser MqttTarget lives in contract.urls (no dependencies, the agent uses it)."""

from __future__ import annotations

import aiomqtt

from cityops.errors import BrokerUnavailable
from contract.urls import MqttTarget, redact_url

__all__ = ["MqttTarget", "check_broker"]


async def check_broker(url: str, timeout_s: float = 5.0, client_id: str | None = None) -> None:
    """Connect and disconnect once (as `client_id`, else a random id); raise BrokerUnavailable
    with the cause if that fails."""
    target = MqttTarget.from_url(url)
    try:
        async with aiomqtt.Client(**target.client_kwargs(), identifier=client_id, timeout=timeout_s):
            pass
    except aiomqtt.MqttError as exc:
        raise BrokerUnavailable(f"cannot connect to the MQTT broker at {redact_url(url)}: {exc}") from None
