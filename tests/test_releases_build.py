"""Building and signing releases: the key pair, what goes in the slim tarball, and what the
checks refuse (a tampered archive, a wrong or missing signature, a wrong key)."""

from __future__ import annotations

import base64
import io
import os
import stat
import subprocess
import sys
import sysconfig
import tarfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contract.releases import sha256_file
from devices.releases.build import build_release
from devices.releases.errors import BuildError, ReleaseRejected, SigningKeyError
from devices.releases.signing import keygen, sign, signature_valid
from firmware.update.errors import VerificationFailed
from firmware.update.verify import load_public_key, read_manifest, verify_archive
from tests.releases_helpers import agent_source_copy, build, fleet_key

FIXED = datetime(2026, 1, 5, tzinfo=UTC)


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path: Path) -> None:
    pair = keygen(tmp_path / "keys")
    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in pair.private_path.read_bytes()
    assert len(base64.b64decode(pair.public_key)) == 32
    assert pair.public_path.read_text().strip() == pair.public_key
    before = pair.private_path.read_bytes()
    with pytest.raises(SigningKeyError, match="never overwritten"):
        keygen(tmp_path / "keys")
    assert pair.private_path.read_bytes() == before


def test_a_release_is_slim_signed_versioned_and_reproducible(tmp_path: Path) -> None:
    pair, key = fleet_key(tmp_path / "keys")
    built = build_release("2.0.0", tmp_path / "dist", key, created_at=FIXED)
    again = build_release("2.0.0", tmp_path / "again", key, created_at=FIXED)
    assert again.sha256 == built.sha256 == sha256_file(built.archive)
    assert signature_valid(pair.public_key, "2.0.0", built.sha256, built.signature)
    assert built.signature_path.read_text().strip() == built.signature

    with tarfile.open(built.archive) as tar:
        names = tar.getnames()
        init = tar.extractfile("src/firmware/__init__.py").read().decode()  # type: ignore[union-attr]
    assert names[0] == "manifest.json" and set(names[1:]) == set(built.manifest.files)
    assert '__version__ = "2.0.0"' in init  # the agent reports the release's version
    tops = {n.split("/")[1] for n in names[1:]}
    assert tops == {"firmware", "contract"}  # the agent's distribution (agent/pyproject.toml), whole
    assert "src/firmware/update/run.py" in names and "src/contract/telemetry.py" in names
    assert not any(n.startswith(("src/firmware/simulate", "src/simulation")) for n in names)
    assert read_manifest(built.archive) == built.manifest
    # the agent needs these three and nothing of the platform (no aiomqtt, pydantic, asyncpg...)
    assert {r.split("==")[0] for r in built.manifest.requirements} == {"paho-mqtt", "msgspec", "cryptography"}
    assert built.size < 200_000, "a slim release, not the platform"


def test_the_release_runs_without_the_platform(tmp_path: Path) -> None:
    """Import the agent from the unpacked release in an interpreter that cannot see the checkout."""
    _, key = fleet_key(tmp_path / "keys")
    built = build("2.0.1", tmp_path / "dist", key)
    with tarfile.open(built.archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    src, site = tmp_path / "unpacked" / "src", sysconfig.get_paths()["purelib"]
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
            "import firmware.update.run, firmware.update.launcher, firmware.config, firmware.cli, firmware\n"
            "assert firmware.__file__.startswith(sys.argv[1]), firmware.__file__\n"
            "assert firmware.__version__ == '2.0.1'\n"
            "import importlib.util\n"
            "assert all(importlib.util.find_spec(p) is None\n"
            "           for p in ('cityops', 'devices', 'ingest', 'rules', 'ops_api', 'simulation'))\n")
    result = subprocess.run([sys.executable, "-S", "-c", code, str(src), site], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_tampered_archive_or_a_wrong_signature_is_refused(tmp_path: Path) -> None:
    pair, key = fleet_key(tmp_path / "keys")
    _, other = fleet_key(tmp_path / "other")
    built = build("2.0.2", tmp_path / "dist", key)
    public = load_public_key(pair.public_key)
    verify_archive(built.archive, version="2.0.2", sha256=built.sha256, signature=built.signature, public_key=public)

    # one byte changed after signing: the digest no longer matches
    tampered = tmp_path / "tampered.tar.gz"
    data = bytearray(built.archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(VerificationFailed, match="checksum mismatch"):
        verify_archive(tampered, version="2.0.2", sha256=built.sha256, signature=built.signature, public_key=public)
    # a re-packed archive with its own digest, signed by someone else's key
    forged_sha = sha256_file(tampered)
    with pytest.raises(VerificationFailed, match="bad signature"):
        verify_archive(tampered, version="2.0.2", sha256=forged_sha, signature=sign(other, "2.0.2", forged_sha),
                       public_key=public)
    # the genuine archive passed off as another version
    with pytest.raises(VerificationFailed, match="bad signature"):
        verify_archive(built.archive, version="9.9.9", sha256=built.sha256, signature=built.signature,
                       public_key=public)
    # no signature at all
    with pytest.raises(VerificationFailed, match="bad signature"):
        verify_archive(built.archive, version="2.0.2", sha256=built.sha256, signature="", public_key=public)
    assert not signature_valid("not a key", "2.0.2", built.sha256, built.signature)


def test_the_build_refuses_an_agent_that_imports_the_platform(tmp_path: Path) -> None:
    _, key = fleet_key(tmp_path / "keys")
    source = agent_source_copy(tmp_path / "src", {"firmware/sampler.py": "\nfrom devices import registry\n"})
    with pytest.raises(BuildError, match="must not depend on the platform"):
        build("2.0.3", tmp_path / "dist", key, source=source)
    source2 = agent_source_copy(tmp_path / "src2", {"firmware/sampler.py": "\nimport requests\n"})
    with pytest.raises(BuildError, match="requests, which is not a declared agent requirement"):
        build("2.0.3", tmp_path / "dist", key, source=source2)
    with pytest.raises(BuildError, match="not a release version"):
        build("../evil", tmp_path / "dist", key)
    with pytest.raises(BuildError, match="no version order"):  # devices could not tell it is newer
        build("nightly", tmp_path / "dist", key)


async def test_publish_refuses_an_unsigned_or_foreign_release(tmp_path: Path, db: object) -> None:
    from cityops.storage import Database
    from devices.releases.store import publish_release

    assert isinstance(db, Database)
    pair, key = fleet_key(tmp_path / "keys")
    other_pair, other = fleet_key(tmp_path / "other")
    version = f"3.{os.getpid()}.{uuid.uuid4().int % 10**12}"  # its own in the shared database
    built = build(version, tmp_path / "dist", other)
    with pytest.raises(ReleaseRejected, match="does not verify"):
        await publish_release(db, built.archive, built.signature, pair.public_key, tmp_path / "store")
    with pytest.raises(ReleaseRejected, match="does not verify"):
        await publish_release(db, built.archive, "", pair.public_key, tmp_path / "store")
    not_a_release = tmp_path / "junk.tar.gz"
    with tarfile.open(not_a_release, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("x"), io.BytesIO(b""))
    with pytest.raises(ReleaseRejected, match="no readable manifest"):
        await publish_release(db, not_a_release, built.signature, pair.public_key, tmp_path / "store")
    assert await db.fetchval("SELECT count(*) FROM releases WHERE version = $1", version) == 0
    release = await publish_release(db, built.archive, built.signature, other_pair.public_key, tmp_path / "store")
    assert release.path.read_bytes() == built.archive.read_bytes()
    assert release.path.parent == (tmp_path / "store" / version).resolve()
    del key
