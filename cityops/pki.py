"""A private certificate authority for councils without one (pure: PEM bytes in and out).

`make_ca` makes a self-signed CA (ECDSA P-256, may sign certificates only, no intermediate
below it); `issue` signs a server certificate (the broker, PostgreSQL, the TLS proxy: its DNS
names and addresses as subjectAltNames, serverAuth) or a client certificate (a device or a
service, its id as the common name, clientAuth). Lifetimes: the CA 10 years, servers 397
days (what browsers and Apple's TLS stacks accept), clients 825 days (a device is visited
rarely). `cityops pki` (cityops_cli/pki.py) writes the files; nothing here touches a disk.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cityops.errors import PkiError

CA_DAYS = 3650
SERVER_DAYS = 397
CLIENT_DAYS = 825
BACKDATE = timedelta(minutes=5)  # a device whose clock is a little behind still accepts a new certificate
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")  # file names and device ids: lower case, digits, _ . -
LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DNS = re.compile(rf"^(\*\.)?({LABEL}\.)*{LABEL}$")

Usage = Literal["server", "client", "peer"]  # peer: server and client at once (NATS routes)


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes  # unencrypted PKCS#8: services read it at start; the file is 0600

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes) -> Authority:
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except ValueError as exc:
            raise PkiError(f"the CA's files are not PEM: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise PkiError("the CA's key does not belong to its certificate", hint="use the ca.pem and ca.key "
                           "`cityops pki init` wrote together")
        return cls(cert, key)


def check_name(name: str, what: str = "name") -> str:
    if not NAME.match(name):
        raise PkiError(f"{what} {name!r} must be lower case letters, digits, _ . or - (at most 63)",
                       hint="e.g. mosquitto, timescaledb, proxy or the device id")
    return name


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _builder(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, now: datetime,
             days: int) -> x509.CertificateBuilder:
    if days < 1:
        raise PkiError(f"a certificate must last at least a day, not {days}")
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))


def make_ca(common_name: str = "CityOps private CA", *, days: int = CA_DAYS, now: datetime | None = None) -> Issued:
    """A self-signed root that may sign end-entity certificates and nothing else (path length 0)."""
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (_builder(name, name, key.public_key(), now, days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _alt_names(dns: Sequence[str], ips: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dns:
        if not DNS.match(host):
            raise PkiError(f"--dns {host!r} is not a host name")
        names.append(x509.DNSName(host.lower()))
    for text in ips:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            raise PkiError(f"--ip {text!r} is not an IP address") from None
    return names


def issue(ca: Authority, common_name: str, *, usage: Usage, dns: Sequence[str] = (), ips: Sequence[str] = (),
          days: int | None = None, now: datetime | None = None) -> Issued:
    """A certificate signed by `ca`: a server's (needs a DNS name or an address) or a client's."""
    now = now or datetime.now(UTC)
    alt = _alt_names(dns, ips)
    if usage in ("server", "peer") and not alt:
        raise PkiError(f"a server certificate for {common_name!r} needs --dns or --ip: clients check the name "
                       "they connect to", hint="e.g. --dns mosquitto --dns broker.example.org")
    days = days or (CLIENT_DAYS if usage == "client" else SERVER_DAYS)
    if now + timedelta(days=days) > ca.cert.not_valid_after_utc:
        raise PkiError("the certificate would outlive its CA", hint="shorten --days or make a new CA")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (_builder(subject, ca.cert.subject, key.public_key(), now, days)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(
                   {"server": [ExtendedKeyUsageOID.SERVER_AUTH], "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
                    "peer": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]}[usage]),
                   critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                              critical=False))
    if usage == "client":  # RFC 5280 profiles want a subjectAltName: the id as a URN beside the common name
        alt.append(x509.UniformResourceIdentifier(f"urn:cityops:client:{common_name}"))
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def describe(cert: x509.Certificate, now: datetime | None = None) -> str:
    """One line: who, for what names, until when."""
    now = now or datetime.now(UTC)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    who = str(cn[0].value) if cn else cert.subject.rfc4514_string()
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n.value) for n in alt]
    except x509.ExtensionNotFound:
        names = []
    left = (cert.not_valid_after_utc - now).days
    return (f"{who}" + (f" [{', '.join(names)}]" if names else "")
            + f" until {cert.not_valid_after_utc:%Y-%m-%d} ({left} days" + (", EXPIRED)" if left < 0 else ")"))
