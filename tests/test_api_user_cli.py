"""`cityops user ...` as an administrator meets it, on a database of its own: the first admin
on an empty database, invitations with the configured base URL, list, disable."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator

import pytest

from cityops.settings import Settings, StorageSettings, get_settings
from cityops.storage import Database, migrate
from cityops_cli import main as cli
from ops_api.app import create_app
from tests.api_helpers import api_client

PASSWORD = "first admin password"
BASE = "https://cityops.example.org"
UserCommand = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def user_command(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> Iterator[UserCommand]:
    """Run `cityops user ...` in this process (stdin given); (exit code, stdout, stderr)."""
    monkeypatch.setenv("CITYOPS_DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("CITYOPS_ACCOUNTS__PUBLIC_BASE_URL", BASE)
    get_settings.cache_clear()

    async def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = await asyncio.to_thread(cli.main, ["user", *args])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    get_settings.cache_clear()


async def test_first_admin_then_an_invitation_on_an_empty_database(fresh_database_url: str,
                                                                   user_command: UserCommand) -> None:
    code, _, err = await user_command("add", "boss", "--role", "admin", stdin=PASSWORD + "\n")
    assert code == 1 and "error: the database has no accounts tables" in err
    assert "hint: run `cityops db migrate` first" in err
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, StorageSettings())
        code, _, err = await user_command("add", "boss", "--role", "admin", stdin="short\n")
        assert code == 1 and "password: must be at least 10 characters" in err

        # the real command, the password piped in: how the README makes the first admin
        env = {**os.environ, "CITYOPS_DATABASE_URL": fresh_database_url, "CITYOPS_ACCOUNTS__PUBLIC_BASE_URL": BASE}
        made = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "cityops_cli", "user", "add", "Boss", "--role", "admin"],
            input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, env=env)
        assert made.returncode == 0, made.stderr
        assert "created admin boss" in made.stdout and f"{BASE}/login" in made.stdout

        code, out, err = await user_command("invite", "hh-42", "--days", "2")
        assert code == 0, err
        [url] = re.findall(r"https://cityops\.example\.org/invite/\S+", out)

        app = create_app(Settings(database_url=fresh_database_url), db=db)  # type: ignore[arg-type]
        async with api_client(app) as client:
            signed_in = await client.post("/auth/login", data={"username": "boss", "password": PASSWORD})
            assert signed_in.status_code == 200 and signed_in.json()["user"]["role"] == "admin"
            joined = await client.post("/auth/invitations/accept", json={
                "token": url.rsplit("/", 1)[1], "username": "jo", "password": "jo's long password"})
            assert joined.status_code == 200 and joined.json()["user"]["household_id"] == "hh-42"

        code, out, _ = await user_command("list")
        assert re.search(r"^boss\s+admin\s+-\s+boss\s+active", out, re.M), out
        assert re.search(r"^jo\s+householder\s+hh-42", out, re.M)
        code, _, err = await user_command("disable", "boss")
        assert code == 1 and "last enabled admin" in err
        code, out, _ = await user_command("disable", "JO")
        assert code == 0 and "disabled jo" in out
        assert await db.fetchval("SELECT disabled FROM users WHERE username = 'jo'") is True
        code, _, err = await user_command("add", "x2", "--role", "operator", "--password-file", "/nonexistent")
        assert code == 1 and "cannot read /nonexistent" in err


def test_the_password_is_never_an_argument() -> None:
    parser = cli.build_parser()
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["user", "add", "x", "--role", "admin", "--password", "secret"])
    assert exited.value.code == 2
    args = parser.parse_args(["user", "add", "x", "--role", "admin", "--password-file", "-"])
    assert str(args.password_file) == "-"


async def test_tenancies_from_the_command_line(fresh_database_url: str, user_command: UserCommand) -> None:
    """An operator's view of tenancies: a flatmate's link (--join) keeps the tenant, the next
    tenancy's link ends them, `end-tenancy` needs a reason, `tenancies` lists who and why."""
    async with Database.connect(fresh_database_url) as db:
        await migrate(db, StorageSettings())
        tokens = {}
        for name, extra in (("ann", ()), ("bo", ("--join",))):
            code, out, err = await user_command("invite", "hh-7", *extra)
            assert code == 0, err
            tokens[name] = re.findall(r"/invite/(\S+)", out)[0]
        assert "joining the current tenancy" in out and "ended" not in out
        app = create_app(Settings(database_url=fresh_database_url), db=db)  # type: ignore[arg-type]
        async with api_client(app) as client:
            for name, token in tokens.items():
                joined = await client.post("/auth/invitations/accept", json={
                    "token": token, "username": name, "password": f"{name}'s long password"})
                assert joined.status_code == 200, joined.text

        with pytest.raises(SystemExit):  # argparse: --reason is required
            cli.build_parser().parse_args(["user", "end-tenancy", "bo"])
        code, out, err = await user_command("end-tenancy", "bo", "--reason", "moved out")
        assert code == 0 and "ended bo's membership of household hh-7" in out, err
        code, out, err = await user_command("end-tenancy", "bo", "--reason", "again")
        assert code == 1 and "no current tenancy" in err
        code, out, err = await user_command("invite", "hh-7")
        assert code == 0 and "ended the membership of 1 previous member(s)" in out, err
        code, out, _ = await user_command("tenancies", "--household", "hh-7")
        assert "3 membership(s)" not in out and "2 membership(s)" in out
        assert out.count("a new tenancy: invitation issued") == 1 and out.count("moved out") == 1
        assert await db.fetchval("SELECT count(*) FROM household_members WHERE ends_at IS NULL") == 0
