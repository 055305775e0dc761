"""Issue 18, part 8: TLS by default. `cityops pki` makes a CA and certificates that verify
(cryptography's X.509 path validation and `openssl verify`), keys 0600; a real Mosquitto
with the generated TLS config accepts a client that trusts that CA and refuses plain TCP and
clients that do not trust it; release downloads must be https outside this machine."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import ssl
import stat
import subprocess
import uuid
from pathlib import Path

import aiomqtt
import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from cityops.embedded.broker import mosquitto_user
from cityops.embedded.process import free_port, make_traversable, spawn, stop_process, wait_for_port
from cityops.errors import ConfigError, PkiError
from cityops.pki import Authority, issue, make_ca
from cityops.settings import load_settings
from contract.urls import MqttTarget
from devices.broker_config import Tls, broker_config, render_broker_config
from devices.secrets import hash_secret
from tests.conftest import skip_or_fail
from tests.pki_helpers import pki


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "pki"
    assert pki(folder, "init") == 0
    assert pki(folder, "server", "mosquitto", "--dns", "localhost", "--dns", "mosquitto", "--ip", "::1") == 0
    assert pki(folder, "device", "frog-0042") == 0
    return folder


def store(folder: Path) -> Store:
    return Store([x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())])


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# --- the certificates -----------------------------------------------------------------------

def test_the_ca_and_its_certificates_verify_and_keys_are_private(ca_dir: Path) -> None:
    ca = cert(ca_dir / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert 3640 <= (ca.not_valid_after_utc - ca.not_valid_before_utc).days <= 3651
    # the broker's certificate, as a TLS client checks it: chain, name, address, serverAuth
    server = cert(ca_dir / "mosquitto.pem")
    for name in (DNSName("localhost"), DNSName("mosquitto"), IPAddress(ipaddress.ip_address("::1"))):
        chain = PolicyBuilder().store(store(ca_dir)).build_server_verifier(name).verify(server, [])
        assert chain[-1] == ca
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store(ca_dir)).build_server_verifier(DNSName("evil.example")).verify(server, [])
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days <= 398
    # the device's: a client certificate, not a server's
    device = cert(ca_dir / "devices" / "frog-0042.pem")
    PolicyBuilder().store(store(ca_dir)).build_client_verifier().verify(device, [])
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store(ca_dir)).build_server_verifier(DNSName("frog-0042")).verify(device, [])
    # OpenSSL agrees
    out = subprocess.run(["openssl", "verify", "-CAfile", str(ca_dir / "ca.pem"), str(ca_dir / "mosquitto.pem"),
                          str(ca_dir / "devices" / "frog-0042.pem")], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.count(": OK") == 2, out.stdout + out.stderr
    for key in ("ca.key", "mosquitto.key", "devices/frog-0042.key"):
        assert stat.S_IMODE((ca_dir / key).stat().st_mode) == 0o600, key
    assert stat.S_IMODE((ca_dir / "ca.pem").stat().st_mode) == 0o644


def test_nothing_is_overwritten_without_force_and_a_foreign_ca_is_refused(ca_dir: Path, tmp_path: Path) -> None:
    before = (ca_dir / "mosquitto.key").read_bytes()
    with pytest.raises(PkiError, match="exists"):
        pki(ca_dir, "server", "mosquitto", "--dns", "localhost")
    with pytest.raises(PkiError, match="has a CA already"):
        pki(ca_dir, "init")
    assert (ca_dir / "mosquitto.key").read_bytes() == before
    assert pki(ca_dir, "server", "mosquitto", "--dns", "localhost", "--force") == 0
    assert (ca_dir / "mosquitto.key").read_bytes() != before
    with pytest.raises(PkiError, match="needs --dns or --ip"):
        pki(ca_dir, "server", "db")
    for bad in (["server", "Bad/Name", "--dns", "x"], ["server", "db", "--dns", "no spaces"],
                ["server", "db", "--ip", "300.1.1.1"], ["device", "../etc"]):
        with pytest.raises(PkiError):
            pki(ca_dir, *bad)
    with pytest.raises(PkiError, match="no CA"):
        pki(tmp_path / "empty", "server", "db", "--dns", "db")
    # a CA's key that is not its certificate's
    other = make_ca()
    with pytest.raises(PkiError, match="does not belong"):
        Authority.load((ca_dir / "ca.pem").read_bytes(), other.key_pem)
    # `show` lists what this CA signed and flags what it did not
    stranger = issue(Authority.load(other.cert_pem, other.key_pem), "stranger", usage="server", dns=["x"])
    (ca_dir / "stranger.pem").write_bytes(stranger.cert_pem)
    assert pki(ca_dir, "show") == 1


# --- settings and URLs --------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000",
                                 "https://cityops.example.org", "https://10.0.0.5:8443"])
def test_release_downloads_may_be_http_only_to_this_machine(url: str) -> None:
    assert load_settings(releases={"download_base_url": url}).releases.download_base_url == url


@pytest.mark.parametrize("url", ["http://cityops.example.org", "http://10.0.0.5:8000", "http://127.0.0.1.evil.example"])
def test_plain_http_release_downloads_elsewhere_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"CITYOPS_RELEASES__DOWNLOAD_BASE_URL.*https"):
        load_settings(releases={"download_base_url": url})


def test_an_mqtts_url_names_its_ca(ca_dir: Path) -> None:
    target = MqttTarget.from_url(f"mqtts://u:p@mosquitto:8883?cafile={ca_dir}/ca.pem")
    assert target.tls and target.cafile == f"{ca_dir}/ca.pem" and target.port == 8883
    assert MqttTarget.from_url("mqtts://u:p@broker.example.org").cafile is None
    for bad in ("mqtt://u:p@h:1883?cafile=/ca.pem", "mqtts://h?cafle=/ca.pem", "mqtts://h?cafile=a&cafile=b"):
        with pytest.raises(ConfigError):
            MqttTarget.from_url(bad)
    with pytest.raises(ConfigError, match="CA file"):
        MqttTarget.from_url(f"mqtts://h?cafile={ca_dir}/missing.pem").client_kwargs()


# --- a real Mosquitto on TLS ------------------------------------------------------------------

def plain_connect(port: int) -> int | None:
    """An MQTT CONNECT in clear to the TLS port: the broker's CONNACK code, or None for none."""
    answered: list[int] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"plain-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set("svc", "s3cret")
    client.on_connect = lambda _c, _u, _f, reason, _p: answered.append(reason.value)
    try:
        client.connect("127.0.0.1", port, keepalive=5)
        for _ in range(30):
            client.loop(timeout=0.1)
            if answered:
                break
    except (OSError, ConnectionError):
        pass
    finally:
        client.disconnect()
    return answered[0] if answered else None


async def handshake(port: int, context: ssl.SSLContext, host: str) -> None:
    """A TLS handshake with the broker, as a client that checks `host` against the certificate."""
    _, writer = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=host), 10)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def test_mosquitto_on_tls_takes_only_clients_that_trust_the_ca(ca_dir: Path, tmp_path: Path) -> None:
    binary = shutil.which("mosquitto")
    if binary is None:
        skip_or_fail("no `mosquitto` binary on PATH (apt-get install mosquitto)")
    assert binary is not None
    secret = "s3cret-" + uuid.uuid4().hex
    passwords, acl, data = tmp_path / "passwords", tmp_path / "acl", tmp_path / "data"
    passwords.write_text(f"svc:{hash_secret(secret)}\n")
    acl.write_text("user svc\ntopic readwrite tls/#\n")
    data.mkdir()
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    # what compose and the systemd install run: one TLS listener and no plain one
    config.write_text(render_broker_config(broker_config(
        password_file=str(passwords), acl_file=str(acl), persistence_dir=str(data), plain=(),
        tls_listeners=[f"127.0.0.1:{port}"], tls=Tls(str(ca_dir / "mosquitto.pem"), str(ca_dir / "mosquitto.key")))))
    assert "listener 1883" not in config.read_text()
    user = mosquitto_user()
    if user:  # as root the broker runs as `mosquitto`: it reads its key as that account (the compose --owner)
        make_traversable(tmp_path)
        for path in (passwords, acl, data, ca_dir / "mosquitto.key", ca_dir / "mosquitto.pem"):
            shutil.chown(path, user)
    log = tmp_path / "broker.log"
    proc = spawn([binary, "-c", str(config)], log_path=log, user=user)
    try:
        await wait_for_port(proc, port, name="mosquitto", log_path=log)
        # trusts the CA (as the services' mqtts://...?cafile= URLs do): in, and a message goes round
        trusted = MqttTarget.from_url(f"mqtts://svc:{secret}@localhost:{port}?cafile={ca_dir}/ca.pem")
        async with aiomqtt.Client(**trusted.client_kwargs(), identifier="svc-1", timeout=10) as client:
            await client.subscribe("tls/echo", qos=1)
            await client.publish("tls/echo", b"over tls", qos=1)
            async with asyncio.timeout(10):
                message = await anext(aiter(client.messages))
            assert message.payload == b"over tls"
        # plain TCP on the TLS port: no CONNACK
        assert plain_connect(port) is None
        # clients that do not trust this CA: the system's CAs, another CA with a certificate for the
        # same names, or the right CA for a name the certificate does not hold (localhost, mosquitto, ::1)
        other_dir = tmp_path / "other"
        assert pki(other_dir, "init") == 0
        for cafile, host in ((None, "localhost"), (other_dir / "ca.pem", "localhost"),
                             (ca_dir / "ca.pem", "127.0.0.1")):
            with pytest.raises(ssl.SSLCertVerificationError):
                await handshake(port, ssl.create_default_context(cafile=cafile), host)
        # and the handshake itself works with the right CA and name (the check above is not vacuous)
        await handshake(port, ssl.create_default_context(cafile=ca_dir / "ca.pem"), "localhost")
    finally:
        await stop_process(proc)
