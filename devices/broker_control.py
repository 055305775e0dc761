"""The one adapter to Mosquitto's dynamic-security control API (`$CONTROL/dynamic-security/v1`).

Commands go as one JSON message from the admin account; the broker answers on
`.../response`, one response per command, matched here by correlation data. Any error,
refusal or a missing answer within the timeout is a BrokerAuthError: the caller says
loudly that the broker was not changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import aiomqtt

from cityops.mqtt import MqttTarget
from cityops.settings import redact_url
from devices.dynsec import CONTROL_TOPIC, Current, Desired, Plan, differences, plan
from devices.errors import BrokerAuthError

log = logging.getLogger("devices.broker_control")

RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
TIMEOUT_S = 5.0
_QUIET = {"listClients", "listRoles"}  # read-only: their answers are data, not news


class BrokerControl:
    """`async with BrokerControl(url) as control: await control.run([...])`."""

    def __init__(self, url: str, timeout_s: float = TIMEOUT_S):
        self.url = url
        self.timeout_s = timeout_s
        self._client = aiomqtt.Client(**MqttTarget.from_url(url).client_kwargs(),
                                      identifier=f"cityops-admin-{uuid.uuid4().hex[:12]}",
                                      protocol=aiomqtt.ProtocolVersion.V5, timeout=timeout_s)

    async def __aenter__(self) -> BrokerControl:
        try:
            await self._client.__aenter__()
            await self._client.subscribe(RESPONSE_TOPIC, qos=1)
        except aiomqtt.MqttError as exc:
            raise BrokerAuthError(f"cannot reach the broker's control API at {redact_url(self.url)}: {exc}") \
                from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(None, None, None)

    async def run(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send the commands; their responses in order. Raises on any error."""
        if not commands:
            return []
        tagged = [{**c, "correlationData": f"{i}"} for i, c in enumerate(commands)]
        try:
            await self._client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
            answers = await asyncio.wait_for(self._collect(len(tagged)), self.timeout_s)
        except TimeoutError:
            raise BrokerAuthError(f"the broker at {redact_url(self.url)} did not answer the control API within "
                                  f"{self.timeout_s:g} s (is the dynamic security plugin loaded, and is this "
                                  "the admin account?)") from None
        except aiomqtt.MqttError as exc:
            raise BrokerAuthError(f"lost the broker at {redact_url(self.url)}: {exc}") from None
        ordered = [answers[str(i)] for i in range(len(tagged))]
        failed = [f"{c['command']} {c.get('username') or c.get('rolename') or ''}: {a['error']}".strip()
                  for c, a in zip(commands, ordered, strict=True) if a.get("error")]
        if failed:
            raise BrokerAuthError("the broker refused: " + "; ".join(failed))
        for command in commands:
            if command["command"] not in _QUIET:
                log.info("broker: %s %s", command["command"], command.get("username") or command.get("rolename"))
        return ordered

    async def _collect(self, count: int) -> dict[str, dict[str, Any]]:
        answers: dict[str, dict[str, Any]] = {}
        async for message in self._client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            for response in json.loads(payload).get("responses", []):
                answers[str(response.get("correlationData"))] = response
            if len(answers) >= count:
                return answers
        return answers

    async def current(self) -> Current:
        clients, roles = await self.run([{"command": "listClients", "verbose": True},
                                         {"command": "listRoles", "verbose": True}])
        return Current.from_listings(clients["data"]["clients"], roles["data"]["roles"])


async def apply(url: str, want: Desired, secrets: dict[str, str], keep: set[str]) -> tuple[Plan, list[str]]:
    """Bring the running broker to `want` (leaving the clients in `keep` alone), then read it
    back; (the plan, what still differs)."""
    async with BrokerControl(url) as control:
        steps = plan(want, (await control.current()).without(keep), secrets)
        await control.run(steps.commands)
        left = differences(want, (await control.current()).without(keep))
    return steps, left
