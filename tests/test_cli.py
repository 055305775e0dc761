"""The `cityops` command as a user meets it: help, wrong input, clear errors."""

import ast
import os
import re
import subprocess
import sys

from cityops.embedded.process import free_port

COMMANDS = ("demo", "db", "agent", "ingest", "rules", "api", "device", "route", "roads", "alerts", "dashboards",
            "release", "user", "bench", "damp", "cases")


def cityops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cityops_cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_help_explains_every_command() -> None:
    result = cityops("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert f"\n    {name}" in result.stdout, name


def test_a_command_imports_its_own_package_and_not_the_whole_platform() -> None:
    """The composition root imports only the command that runs (issue 19)."""
    probe = ("import sys; from cityops_cli.main import build_parser; build_parser('{}');"
             "print(sorted({{m.split('.')[0] for m in sys.modules}}))")
    loaded = {name: set(ast.literal_eval(subprocess.run(
        [sys.executable, "-c", probe.format(name)], capture_output=True, text=True, check=True,
        timeout=60).stdout)) for name in ("agent", "device")}
    assert {"fastapi", "pyvrp", "asyncpg", "ops_api", "rules", "ingest"} & loaded["agent"] == set()
    assert "devices" in loaded["device"] and {"fastapi", "pyvrp", "ops_api"} & loaded["device"] == set()


def test_an_unknown_command_is_a_message_not_a_traceback() -> None:
    result = cityops("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_action_says_what_is_required() -> None:
    result = cityops("db")
    assert result.returncode == 2
    assert "required" in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_line_and_a_hint() -> None:
    url = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/city"
    result = cityops("db", "status", env={"CITYOPS_DATABASE_URL": url})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: cannot connect to postgresql://app:***@127.0.0.1")
    assert "connection refused" in lines[0]
    assert lines[1].startswith("hint: ")
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_setting_is_refused_before_anything_starts() -> None:
    result = cityops("db", "status", env={"CITYOPS_DATABASE_URL": "localhost:5432"})
    assert result.returncode == 1
    assert "error: invalid settings: CITYOPS_DATABASE_URL" in result.stderr


def test_a_database_that_does_not_exist_says_how_to_create_it(postgres_admin_url: str) -> None:
    from urllib.parse import urlsplit, urlunsplit

    url = urlunsplit(urlsplit(postgres_admin_url)._replace(path="/no_such_db_here"))
    result = cityops("db", "migrate", env={"CITYOPS_DATABASE_URL": url})
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert "hint: create it" in result.stderr


def test_bench_rejects_nonsense_sizes() -> None:
    result = cityops("bench", "write", "--rows", "0")
    assert result.returncode == 2
    assert "must be positive" in result.stdout + result.stderr


def test_db_migrate_twice_then_status(fresh_database_url: str) -> None:
    env = {"CITYOPS_DATABASE_URL": fresh_database_url}
    first = cityops("db", "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_registry" in first.stdout
    second = cityops("db", "migrate", env=env)
    assert second.returncode == 0
    assert "nothing to do" in second.stdout
    state = cityops("db", "status", env=env)
    # plain PostgreSQL here; TimescaleDB where CITYOPS_TEST_DATABASE_URL names such a server
    assert "back end: plain PostgreSQL" in state.stdout or "back end: TimescaleDB" in state.stdout
    assert re.search(r"applied  0001_registry  \[(postgresql|timescaledb)\]", state.stdout)
    assert "up to date" in state.stdout
