"""Package the device agent as a slim, signed release.

What goes in: the agent's distribution (agent/pyproject.toml): its packages, `firmware` and
`contract`, whole. An import of anything else of the platform (cityops, devices, ingest,
rules, ...) fails the build: the release would not run. The release's
`firmware/__init__.py` carries the release version, which the agent reports as its
firmware version.

Dependencies: the distribution's own (agent/pyproject.toml, without the hardware extras),
pinned to the versions installed where the build runs (the versions the tests ran with);
a third-party import outside them fails the build.
With `wheels=WheelOptions(...)` they are fetched with `pip download` (optionally offline
from a wheel folder, optionally for the Pi's platform) into wheels/ and installed on the
device into the version's own site/; without (the default for tests, `--no-deps`), the
device's environment provides them.

The tarball is reproducible: sorted entries, fixed timestamps and owners, gzip without a
date, so the same source, version and `created_at` give the same SHA-256.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.metadata
import io
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.releases import MANIFEST_NAME, VERSION, Manifest, encode_manifest, now_utc, version_key
from devices.releases.errors import BuildError
from devices.releases.signing import sign

AGENT_PACKAGES = ("firmware", "contract")   # agent/pyproject.toml [tool.setuptools.packages.find]
PLATFORM_PACKAGES = ("cityops", "cityops_cli", "devices", "ingest", "rules", "ops_api", "alerts", "dashboards",
                     "pipelines", "jobs", "democity", "benchmarks", "simulation")
# distribution name -> the import names it provides (agent/pyproject.toml's dependencies)
AGENT_REQUIREMENTS = {
    "paho-mqtt": ("paho",), "msgspec": ("msgspec",), "cryptography": ("cryptography",),
}
_VERSION_LINE = re.compile(r'^__version__ = "[^"]*"$', re.MULTILINE)
EPOCH = 315532800  # 1980-01-01, the earliest time a zip/wheel can hold too


@dataclass(frozen=True)
class WheelOptions:
    find_links: Path | None = None  # a folder of wheels to take them from
    no_index: bool = False  # offline: only find_links
    platform: str | None = None  # e.g. manylinux2014_aarch64 for a Pi running 64-bit Raspberry Pi OS
    python_version: str | None = None  # e.g. 3.11, with platform


@dataclass(frozen=True)
class BuiltRelease:
    version: str
    archive: Path
    signature_path: Path
    sha256: str
    signature: str
    size: int
    manifest: Manifest


def default_source() -> Path:
    import firmware

    return Path(firmware.__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Every absolute module name imported anywhere in the file (also inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def collect_files(source: Path) -> tuple[dict[str, Path], set[str]]:
    """Archive path (relative to src/) -> file for every module of the agent's packages, and
    their third-party top-level imports; an import of the platform fails the build."""
    files: dict[str, Path] = {}
    for package in AGENT_PACKAGES:
        folder = source / package
        if not (folder / "__init__.py").is_file():
            raise BuildError(f"{source} has no {package}/ package to build from")
        files.update({p.relative_to(source).as_posix(): p for p in sorted(folder.rglob("*.py"))
                      if "__pycache__" not in p.parts})
    third_party: set[str] = set()
    for name, path in files.items():
        for imported in _imports(path):
            top = imported.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__" or top in AGENT_PACKAGES:
                continue
            if top in PLATFORM_PACKAGES:
                raise BuildError(f"{name} imports {imported}: the agent must not depend on the platform "
                                 "(docs/architecture.md)")
            third_party.add(top)
    return files, third_party


def requirements(third_party: set[str]) -> list[str]:
    """AGENT_REQUIREMENTS pinned to the installed versions; an import outside them fails."""
    provided = {name: dist for dist, names in AGENT_REQUIREMENTS.items() for name in names}
    unknown = sorted(third_party - provided.keys())
    if unknown:
        raise BuildError(f"the agent imports {', '.join(unknown)}, which is not a declared agent requirement",
                         hint="add it to agent/pyproject.toml and AGENT_REQUIREMENTS here (or make the import lazy)")
    pinned = []
    for dist in sorted(AGENT_REQUIREMENTS):
        try:
            pinned.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            raise BuildError(f"{dist} is not installed here, so its version cannot be pinned") from None
    return pinned


def stamp_version(text: str, version: str) -> str:
    stamped, count = _VERSION_LINE.subn(f'__version__ = "{version}"', text)
    if count != 1:
        raise BuildError("firmware/__init__.py has no single `__version__ = \"...\"` line to stamp")
    return stamped


def download_wheels(reqs: list[str], dest: Path, options: WheelOptions) -> list[Path]:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--dest", str(dest)]
    if options.find_links is not None:
        command += ["--find-links", str(options.find_links)]
    if options.no_index:
        command.append("--no-index")
    if options.platform:
        command += ["--platform", options.platform, "--python-version", options.python_version or "3.11",
                    "--implementation", "cp"]
    result = subprocess.run([*command, *reqs], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BuildError(f"pip download failed: {' / '.join(tail)}")
    return sorted(dest.glob("*.whl"))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def build_release(version: str, out_dir: Path, private_key: Ed25519PrivateKey, *, source: Path | None = None,
                  wheels: WheelOptions | None = None, created_at: datetime | None = None) -> BuiltRelease:
    if not VERSION.match(version):
        raise BuildError(f"{version!r} is not a release version (letters, digits, . _ + -; at most 64)")
    if version_key(version) is None:  # devices take only newer versions: they must be able to tell
        raise BuildError(f"{version!r} has no version order: use numbers like 1.4.0 (optionally rc1, +local)")
    source = (source or default_source()).resolve()
    files, third_party = collect_files(source)
    reqs = requirements(third_party)
    contents: dict[str, bytes] = {}
    for name, path in sorted(files.items()):
        data = path.read_bytes()
        if name == "firmware/__init__.py":
            data = stamp_version(data.decode(), version).encode()
        contents[f"src/{name}"] = data
    with tempfile.TemporaryDirectory(prefix="release-wheels") as tmp:
        if wheels is not None:
            for wheel in download_wheels(reqs, Path(tmp), wheels):
                contents[f"wheels/{wheel.name}"] = wheel.read_bytes()
        manifest = Manifest(version=version, created_at=created_at or now_utc().replace(microsecond=0),
                            files={name: hashlib.sha256(data).hexdigest() for name, data in sorted(contents.items())},
                            unpacked_bytes=sum(len(d) for d in contents.values()), requirements=reqs,
                            wheels=wheels is not None)
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"cityops-agent-{version}.tar.gz"
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, MANIFEST_NAME, encode_manifest(manifest))
        for name, data in contents.items():
            _add(tar, name, data)
    archive.write_bytes(buffer.getvalue())
    sha256 = hashlib.sha256(buffer.getvalue()).hexdigest()
    signature = sign(private_key, version, sha256)
    signature_path = archive.with_name(archive.name + ".sig")
    signature_path.write_text(signature + "\n")
    return BuiltRelease(version, archive, signature_path, sha256, signature, len(buffer.getvalue()), manifest)
