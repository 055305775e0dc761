"""Install a verified release beside the others: versions/<v>/ holds its files, site/ its
wheels (when it carries them), `.installed` is written last. Nothing here touches `current`:
switching is the launcher's job.

Free space is checked before unpacking, against the manifest's size plus a reserve: a full
disk refuses the update instead of leaving a half-written version and a spool with no room.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

from contract.releases import Manifest
from firmware.update.errors import InstallFailed, NoSpace, VerificationFailed
from firmware.update.layout import INSTALLED_MARK, Layout
from firmware.update.verify import read_manifest, verify_tree

log = logging.getLogger("firmware.update.install")

FreeBytes = Callable[[Path], int]


def disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


def check_space(path: Path, needed: int, free_bytes: FreeBytes, what: str) -> None:
    free = free_bytes(path)
    if free < needed:
        raise NoSpace(f"not enough space for {what}: {needed / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free "
                      f"in {path}")


def install(archive: Path, layout: Layout, version: str, *, reserve_bytes: int = 20_000_000,
            free_bytes: FreeBytes = disk_free, python: str = sys.executable) -> Manifest:
    """Unpack a verified archive into versions/<version>; returns its manifest."""
    manifest = read_manifest(archive)
    if manifest.version != version:
        raise VerificationFailed(f"the archive's manifest says version {manifest.version}, offered as {version}")
    layout.ensure()
    check_space(layout.versions, manifest.unpacked_bytes * (2 if manifest.wheels else 1) + reserve_bytes,
                free_bytes, f"release {version}")
    final = layout.version_dir(version)
    work = layout.versions / f".{version}.installing"
    shutil.rmtree(work, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(work, filter="data")  # refuses absolute paths, links out of the tree, devices
        verify_tree(work, manifest)
        if manifest.wheels:
            _install_wheels(work, manifest, python)
        (work / INSTALLED_MARK).write_text(version + "\n")
        if final.exists():  # a leftover (an earlier, interrupted or rolled-back install)
            shutil.rmtree(final)
        os.replace(work, final)
    except (OSError, tarfile.TarError) as exc:
        raise InstallFailed(f"cannot unpack release {version}: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("installed release %s in %s", version, final)
    return manifest


def _install_wheels(folder: Path, manifest: Manifest, python: str) -> None:
    wheels = sorted((folder / "wheels").glob("*.whl"))
    command = [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--disable-pip-version-check",
               "--target", str(folder / "site"), *map(str, wheels)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InstallFailed(f"installing the wheels of release {manifest.version} failed: {tail[0]}")
