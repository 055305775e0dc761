"""`cityops pki init|server|device|show`: a private CA's files (cityops/pki.py makes the certificates).

Layout of the folder (`--dir`, CITYOPS_PKI__DIR):

    ca.pem                    the CA certificate: give it to every client (devices, services)
    ca.key                    the CA's key, 0600 (or CITYOPS_PKI__CA_KEY: somewhere no service mounts)
    <name>.pem, <name>.key    servers: mosquitto, timescaledb, proxy ...
    devices/<id>.pem, .key    client certificates of devices or services

Keys are written 0600 from the start (never world-readable for a moment) and replaced
atomically; an existing file is kept unless `--force`. `--owner UID[:GID]` hands a key to
the server that reads it (PostgreSQL refuses a key another user owns).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from cityops.errors import PkiError
from cityops.pki import Authority, Issued, Usage, check_name, describe, issue, make_ca
from cityops.settings import Settings

KEY_MODE = 0o600
CERT_MODE = 0o644


def register(commands: argparse._SubParsersAction[Any]) -> None:
    pki = commands.add_parser("pki", help="a private CA: certificates for the broker, PostgreSQL, the proxy, devices",
                              description="A private certificate authority for councils without one "
                                          "(docs/operations.md, \"TLS\").")
    actions = pki.add_subparsers(dest="pki_command", metavar="ACTION", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=text, description=text + ".")
        sub.add_argument("--dir", type=Path, help="the CA's folder (default CITYOPS_PKI__DIR, .cityops/pki)")
        sub.add_argument("--ca-key", type=Path, help="the CA's key (default CITYOPS_PKI__CA_KEY, <dir>/ca.key)")
        return sub

    init = action("init", "make the CA: ca.pem (give it to clients) and ca.key (keep it secret)")
    init.add_argument("--name", default="CityOps private CA", help="the CA's common name")
    init.add_argument("--days", type=int, default=None, help="lifetime (default 3650)")
    init.add_argument("--force", action="store_true", help="replace an existing CA (every certificate it signed "
                      "stops being trusted by clients given the new ca.pem)")
    init.set_defaults(handler=run_init)

    server = action("server", "a server certificate (NAME.pem, NAME.key) for its DNS names and addresses")
    server.add_argument("name", metavar="NAME", help="e.g. mosquitto, timescaledb, proxy")
    server.add_argument("--dns", action="append", default=[], help="a name clients connect to; repeat")
    server.add_argument("--ip", action="append", default=[], help="an address clients connect to; repeat")
    server.add_argument("--peer", action="store_true", help="valid for client use too: a NATS node, whose routes "
                        "to the other nodes are mutual TLS (docs/nats.md)")
    _issue_options(server)

    device = action("device", "a client certificate (devices/ID.pem, .key) for a device or a service account")
    device.add_argument("name", metavar="DEVICE_ID", help="the device id (or service account) as the common name")
    _issue_options(device)

    action("show", "the CA and every certificate it issued here: names, expiry, signed by this CA"
           ).set_defaults(handler=run_show)


def _issue_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--days", type=int, default=None, help="lifetime (default: servers 397, clients 825)")
    sub.add_argument("--owner", metavar="UID[:GID]", help="chown the key and certificate (as root), e.g. 1883 for "
                     "the eclipse-mosquitto image, 1000 for timescaledb-ha")
    sub.add_argument("--force", action="store_true", help="replace an existing certificate and key")
    sub.set_defaults(handler=run_issue)


# --- files --------------------------------------------------------------------------------

def _paths(args: argparse.Namespace, settings: Settings) -> tuple[Path, Path]:
    folder = args.dir or settings.pki.dir
    return folder, args.ca_key or settings.pki.ca_key or folder / "ca.key"


def _owner(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    uid, _, gid = text.partition(":")
    try:
        return int(uid), int(gid or uid)
    except ValueError:
        raise PkiError(f"--owner {text!r} is not UID or UID:GID (numbers: the container's user)") from None


def write_file(path: Path, data: bytes, mode: int, *, force: bool, owner: tuple[int, int] | None = None) -> None:
    """Write with `mode` from the first byte (a temporary file, then rename); keep what is there unless force."""
    if path.exists() and not force:
        raise PkiError(f"{path} exists; nothing was changed", path=str(path),
                       hint="--force replaces it (clients then need what is issued now)")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)  # the umask may have taken bits away
            if owner is not None:
                os.fchown(out.fileno(), *owner)
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PkiError(f"cannot write {path}: {exc.strerror}", path=str(path),
                       hint="--owner needs root" if owner is not None else "check the folder's permissions") from None


def load_authority(folder: Path, key_path: Path) -> Authority:
    try:
        return Authority.load((folder / "ca.pem").read_bytes(), key_path.read_bytes())
    except FileNotFoundError as exc:
        raise PkiError(f"no CA: {exc.filename} is missing", path=exc.filename) from None
    except PermissionError as exc:
        raise PkiError(f"cannot read {exc.filename}", path=exc.filename, hint="run as the CA key's owner") from None


def _save(folder: Path, stem: str, issued: Issued, *, force: bool, owner: tuple[int, int] | None) -> None:
    cert, key = folder / f"{stem}.pem", folder / f"{stem}.key"
    if not force:
        for path in (cert, key):
            if path.exists():
                raise PkiError(f"{path} exists; nothing was changed", path=str(path),
                               hint="--force replaces it (and its key)")
    write_file(key, issued.key_pem, KEY_MODE, force=True, owner=owner)
    write_file(cert, issued.cert_pem, CERT_MODE, force=True, owner=owner)


# --- handlers -----------------------------------------------------------------------------

async def run_init(args: argparse.Namespace, settings: Settings) -> int:
    folder, key_path = _paths(args, settings)
    for path in (folder / "ca.pem", key_path):
        if path.exists() and not args.force:
            raise PkiError(f"{path} exists: this folder has a CA already", path=str(path),
                           hint="--force makes a new one; every client then needs the new ca.pem")
    ca = make_ca(args.name, **({"days": args.days} if args.days else {}))
    write_file(key_path, ca.key_pem, KEY_MODE, force=True)
    write_file(folder / "ca.pem", ca.cert_pem, CERT_MODE, force=True)
    print(f"CA: {describe(ca.cert)}")
    print(f"wrote {folder / 'ca.pem'} (give it to every client: agents' ca_file, mqtts://...?cafile=, sslrootcert=)")
    print(f"wrote {key_path} (0600; keep it where no service can read it, ideally offline)")
    return 0


async def run_issue(args: argparse.Namespace, settings: Settings) -> int:
    folder, key_path = _paths(args, settings)
    usage: Usage = ("peer" if getattr(args, "peer", False) else "server") if args.pki_command == "server" else "client"
    name = check_name(args.name, "DEVICE_ID" if usage == "client" else "NAME")
    owner = _owner(args.owner)
    ca = load_authority(folder, key_path)
    issued = issue(ca, name, usage=usage, dns=getattr(args, "dns", ()), ips=getattr(args, "ip", ()), days=args.days)
    stem = f"devices/{name}" if usage == "client" else name
    _save(folder, stem, issued, force=args.force, owner=owner)
    print(f"{usage}: {describe(issued.cert)}")
    print(f"wrote {folder / (stem + '.pem')} and {folder / (stem + '.key')} (0600"
          + (f", owner {owner[0]}:{owner[1]})" if owner else ")"))
    return 0


async def run_show(args: argparse.Namespace, settings: Settings) -> int:
    folder, _ = _paths(args, settings)
    try:
        ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    except FileNotFoundError:
        raise PkiError(f"no CA in {folder}: {folder / 'ca.pem'} is missing", path=str(folder / "ca.pem")) from None
    print(f"CA  {describe(ca)}")
    bad = 0
    for path in sorted([*folder.glob("*.pem"), *folder.glob("devices/*.pem")]):
        if path.name == "ca.pem":
            continue
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        try:
            cert.verify_directly_issued_by(ca)
            mark = ""
        except (ValueError, TypeError, InvalidSignature):
            mark, bad = "  NOT SIGNED BY THIS CA", bad + 1
        print(f"    {path.relative_to(folder)}: {describe(cert)}{mark}")
    return 1 if bad else 0
