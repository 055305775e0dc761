"""Schemathesis against the app's own OpenAPI description: every operation, generated inputs
(valid and invalid), signed in as an operator, a householder and an admin, and never a 5xx.

The API runs under uvicorn on a free port in this event loop, against a database of its own
(the fuzzing creates users, devices and invitations that would disturb other tests); the
generated requests go out from a worker thread (schemathesis and Hypothesis are synchronous).
A bounded number of examples per operation keeps the run well under a minute.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import hypothesis.errors
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from cityops.embedded.broker import EmbeddedBroker
from cityops.settings import DevicesSettings, Settings, StorageSettings
from cityops.storage import Database, migrate
from ops_api.accounts.roles import Role
from ops_api.accounts.sessions import open_session
from ops_api.app import create_app
from tests.api_helpers import make_user, serving

# per operation, role and mode: bounded so the run stays well under a minute; a deeper run:
# CITYOPS_FUZZ_EXAMPLES=50 pytest tests/test_api_schemathesis.py
EXAMPLES = int(os.environ.get("CITYOPS_FUZZ_EXAMPLES", "4"))
ROLES = (Role.OPERATOR, Role.HOUSEHOLDER, Role.ADMIN)


def send(http: httpx.Client, case: schemathesis.Case, base_url: str, headers: dict[str, str]) -> httpx.Response:
    """The case as an httpx request. (schemathesis's own requests transport reads urllib3's pool
    internals, which urllib3-future, pulled in by grafana-client's niquests, does not have.)"""
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
    data = kwargs.pop("data", None)
    if isinstance(data, str | bytes):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    kwargs.pop("auth", None)
    if kwargs.get("files"):
        kwargs["files"] = [_as_file_part(part) for part in kwargs["files"]]
    response = http.request(kwargs.pop("method"), kwargs.pop("url"), params=kwargs.pop("params", None),
                            headers=kwargs.pop("headers", None), cookies=kwargs.pop("cookies", None) or None,
                            **{k: v for k, v in kwargs.items() if k in ("json", "content", "data", "files")})
    response.request.read()   # a multipart body is streamed; schemathesis reads it back for its report
    return response


def _as_file_part(part: Any) -> Any:
    """A generated multipart file whose content is a number or null (schemathesis makes them from
    a "binary" schema) sent as its text, as a browser would send any file's bytes: httpx reads
    only bytes, text or files, and would fail in the client before the server saw anything."""
    name, value = part
    if isinstance(value, tuple):
        filename, content, *rest = value
        return name, (filename, _as_bytes(content), *rest)
    return name, _as_bytes(value)


def _as_bytes(content: Any) -> Any:
    return content if isinstance(content, bytes | str) or hasattr(content, "read") else str(content).encode()


def examples(http: httpx.Client, strategy: SearchStrategy[schemathesis.Case], base_url: str,
             headers: dict[str, str], statuses: Counter[int]) -> Callable[[], None]:
    """A Hypothesis test that sends generated cases of one operation and fails on a 5xx."""

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        response = send(http, case, base_url, headers)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error])

    return run


def fuzz(base_url: str, tokens: dict[Role, str]) -> tuple[list[str], Counter[int]]:
    """Run every operation as every role; (the 5xx found, how often each status came back)."""
    schema = schemathesis.openapi.from_dict(httpx.get(f"{base_url}/openapi.json").json())
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    with httpx.Client(timeout=10) as http:
        operations = []
        for result in schema.get_all_operations():
            if isinstance(result, Ok):
                operations.append(result.ok())
            else:
                problems.append(f"the OpenAPI description has an operation schemathesis cannot read: {result.err()}")
        operations.sort(key=lambda op: op.path == "/auth/logout")  # last: it ends the sessions used here
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(generation_mode=mode)
                for role, token in tokens.items():
                    run = examples(http, strategy, base_url, {"Authorization": f"Bearer {token}"}, statuses)
                    try:
                        run()
                    except hypothesis.errors.Unsatisfiable:
                        break  # nothing invalid to send: an operation without parameters has no negative cases
                    except (Exception, BaseExceptionGroup) as exc:  # a line per failure; the rest still run
                        problems.append(f"{operation.label} as {role.value} ({mode.value}): "
                                        f"{type(exc).__name__}: {str(exc)[:800]}")
    return problems, statuses


async def test_no_operation_answers_5xx_to_any_role(fresh_database_url: str, tmp_path: Path,
                                                    mosquitto: EmbeddedBroker) -> None:
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, StorageSettings())
        tokens = {}
        for role in ROLES:
            user = await make_user(db, role, household_id="hh-fuzz" if role is Role.HOUSEHOLDER else None)
            tokens[role] = await open_session(db, user.user_id)
        settings = Settings(database_url=fresh_database_url,  # type: ignore[arg-type]
                            devices=DevicesSettings(broker_password_file=tmp_path / "passwords",
                                                    broker_acl_file=tmp_path / "acl"))
        async with serving(create_app(settings, db=db, mqtt_url=mosquitto.url)) as base_url:
            problems, statuses = await asyncio.to_thread(fuzz, base_url, tokens)
    assert not problems, "\n".join(problems)
    # the inputs reached the handlers: answers, refusals by role, and validation errors all came back
    assert statuses[200] > 50 and statuses[403] > 10 and statuses[422] > 50, statuses
