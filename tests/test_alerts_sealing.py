"""Webhook secrets sealed at rest (issue 18, part 7): what the table holds, start-up refusals, key rotation.

Against the real PostgreSQL and through `cityops alerts ...` as an operator runs it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from alerts.errors import SecretsKeyError
from alerts.sealing import SEALED, Sealer, new_key
from alerts.store import check_secrets
from cityops.settings import get_settings
from cityops.storage import Database
from cityops_cli.main import main

RECEIVER = "https://receiver.example.org/hook"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[list[str]]:
    """Run the CLI against the session database with the given keys (set the list's items)."""
    chosen: list[str] = []
    monkeypatch.setenv("CITYOPS_DATABASE_URL", database_url)

    def apply() -> None:
        monkeypatch.setenv("CITYOPS_ALERTS__SECRET_KEYS", json.dumps(chosen))
        get_settings.cache_clear()

    chosen.append(new_key())
    apply()
    yield chosen
    get_settings.cache_clear()


async def cli(*argv: str) -> int:
    get_settings.cache_clear()
    return await asyncio.to_thread(main, list(argv))


def test_a_sealed_secret_opens_only_with_its_key() -> None:
    first, other = new_key(), new_key()
    sealed = Sealer([first]).seal("hmac-secret-0123456789")
    assert sealed.startswith(SEALED) and "hmac-secret" not in sealed
    assert Sealer([first]).open(sealed) == "hmac-secret-0123456789"
    assert Sealer([other, first]).open(sealed) == "hmac-secret-0123456789"      # an older key still opens
    with pytest.raises(SecretsKeyError, match="not in CITYOPS_ALERTS__SECRET_KEYS"):
        Sealer([other]).open(sealed)
    with pytest.raises(SecretsKeyError, match="stored in clear"):
        Sealer([first]).open("hmac-secret-0123456789")
    with pytest.raises(SecretsKeyError, match="not a Fernet key"):
        Sealer(["not-a-key"])
    with pytest.raises(SecretsKeyError, match="no key"):
        Sealer([])
    rotated = Sealer([other, first]).reseal(sealed)
    assert Sealer([other]).open(rotated) == "hmac-secret-0123456789"


async def test_the_table_holds_ciphertext_and_the_runner_refuses_to_start_without_the_key(
        db: Database, unique: str, keys: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    user = f"{unique}-officer"
    assert await cli("alerts", "subscribe", "--user", user, "--role", "operator", "--channel", "webhook",
                     "--to", RECEIVER, "--secret", "shared-with-the-receiver-42") == 0
    stored = await db.fetchval("SELECT secret FROM alert_subscriptions WHERE user_id = $1", user)
    assert stored.startswith(SEALED) and "shared-with-the-receiver-42" not in stored       # a dump learns nothing
    assert Fernet(keys[0].encode()).decrypt(stored[len(SEALED):].encode()) == b"shared-with-the-receiver-42"

    # start-up with no key, or the wrong one: refused loudly, naming the subscription
    for wrong in ([], [new_key()]):
        monkeypatch.setenv("CITYOPS_ALERTS__SECRET_KEYS", json.dumps(wrong))
        capsys.readouterr()
        assert await cli("alerts", "run") == 1
        err = capsys.readouterr().err
        assert "webhook secret(s) cannot be opened" in err and "CITYOPS_ALERTS__SECRET_KEYS" in err
    # adding a webhook with no key to seal it: refused, nothing stored
    monkeypatch.setenv("CITYOPS_ALERTS__SECRET_KEYS", "[]")
    assert await cli("alerts", "subscribe", "--user", f"{user}-2", "--role", "operator", "--channel", "webhook",
                     "--to", RECEIVER) == 1
    assert await db.fetchval("SELECT count(*) FROM alert_subscriptions WHERE user_id = $1", f"{user}-2") == 0
    await db.execute("UPDATE alert_subscriptions SET enabled = false WHERE user_id = $1", user)


async def test_rotation_and_secrets_from_before_sealing(db: Database, unique: str, keys: list[str],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    user = f"{unique}-legacy"
    await db.execute("INSERT INTO alert_subscriptions (user_id, role, channel, target, secret) "
                     "VALUES ($1, 'operator', 'webhook', $2, 'from-before-sealing-0123')", user, RECEIVER)
    with pytest.raises(SecretsKeyError, match="stored in clear"):
        await check_secrets(db, Sealer(keys))
    assert await cli("alerts", "seal-secrets") == 0
    first = await db.fetchval("SELECT secret FROM alert_subscriptions WHERE user_id = $1", user)
    assert Sealer(keys).open(first) == "from-before-sealing-0123"

    newer = new_key()                               # rotate: the new key first, the old one still listed
    monkeypatch.setenv("CITYOPS_ALERTS__SECRET_KEYS", json.dumps([newer, keys[0]]))
    assert await cli("alerts", "seal-secrets") == 0
    second = await db.fetchval("SELECT secret FROM alert_subscriptions WHERE user_id = $1", user)
    assert second != first and Sealer([newer]).open(second) == "from-before-sealing-0123"
    assert "sealed" in capsys.readouterr().out
    await db.execute("UPDATE alert_subscriptions SET enabled = false WHERE user_id = $1", user)


def test_new_key_prints_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "new-key"]) == 0
    Fernet(capsys.readouterr().out.strip().encode())
