"""requirements/lock.txt pins every declared dependency, and every install path uses it.

The lock is regenerated with `bash scripts/lock.sh` (README, Development); a dependency added
to pyproject.toml without regenerating it would install unpinned, which this test reports.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lock.txt"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
DEV = [Requirement(r) for r in PROJECT["optional-dependencies"]["dev"]]


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for raw in LOCK.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert match, f"not an exact pin: {raw!r}"
        found[canonicalize_name(match.group(1))] = Version(match.group(2))
    return found


@pytest.mark.parametrize("requirement", RUNTIME + DEV, ids=str)
def test_every_declared_dependency_is_pinned_within_its_range(requirement: Requirement) -> None:
    locked = pins()
    name = canonicalize_name(requirement.name)
    assert name in locked, f"{name} is not in {LOCK.name}: run `bash scripts/lock.sh`"
    assert requirement.specifier.contains(locked[name], prereleases=True), (
        f"{name}=={locked[name]} is outside {requirement.specifier}: run `bash scripts/lock.sh`"
    )


@pytest.mark.parametrize("requirement", RUNTIME, ids=str)
def test_every_runtime_dependency_declares_a_floor(requirement: Requirement) -> None:
    """scripts/test-floors.sh tests the floors; a dependency without one would go untested."""
    assert any(spec.operator == ">=" for spec in requirement.specifier), requirement


@pytest.mark.parametrize(
    "path", ["scripts/test.sh", "scripts/demo.sh", "Dockerfile"], ids=lambda p: p
)
def test_every_install_uses_the_lock(path: str) -> None:
    text = re.sub(r"\\\n\s*", " ", (ROOT / path).read_text(encoding="utf-8"))
    installs = [
        line
        for line in text.splitlines()
        if re.search(r"pip (install|wheel)\b", line) and "--no-index" not in line
    ]
    assert installs, f"{path} installs nothing"
    for line in installs:
        assert "--constraint requirements/lock.txt" in line, line
