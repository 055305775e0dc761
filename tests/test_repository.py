"""The repository's own house rules, checked on every file it tracks."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).exists()]


def test_test_modules_share_helpers_and_never_import_each_other() -> None:
    """Shared fixtures live in conftest.py and tests/*_helpers.py (issue 19, part 6)."""
    offenders = []
    for path in tracked("tests/*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.test_"):
                offenders.append(f"{path.name} imports {node.module}")
    assert offenders == []


def test_the_clone_stands_alone_nothing_points_outside_it() -> None:
    """A user's clone has only itself: code, tests and docs cite the repository's own docs."""
    outside = "../" + "shared"  # split so that this file does not match itself
    hits = [str(p.relative_to(ROOT)) for p in tracked("*.py", "*.md", "*.toml", "*.yaml", "*.yml", "Makefile", "*.sh")
            if outside in p.read_text(errors="replace")]
    assert hits == []


def third_party_imports(package: str) -> set[str]:
    """Every module root `package` imports (at any depth, lazily or not) outside the standard library."""
    roots: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    return {root for root in roots if root not in sys.stdlib_module_names}


# issue 19: the contract needs only msgspec and cryptography; the agent adds paho-mqtt and the
# optional hardware libraries of its drivers (agent/pyproject.toml), and nothing of the platform
@pytest.mark.parametrize(("package", "allowed"), [
    ("contract", {"contract", "msgspec", "cryptography"}),
    ("firmware", {"firmware", "contract", "msgspec", "cryptography", "paho", "smbus2", "gpiozero", "serial"}),
])
def test_the_contract_and_the_agent_import_only_what_their_distribution_installs(
        package: str, allowed: set[str]) -> None:
    assert third_party_imports(package) - allowed == set()
