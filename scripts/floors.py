"""Print a pip constraints file pinning every dependency in pyproject.toml to its declared floor.

`name>=X` becomes `name==X` (runtime and dev dependencies alike); a requirement without a floor
is left free. scripts/test-floors.sh installs with it, so the floors are tested, not only
declared.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement


def floors(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    declared = [
        *project.get("dependencies", []),
        *(r for extra in project.get("optional-dependencies", {}).values() for r in extra),
    ]
    pins: dict[str, str] = {}
    for line in declared:
        requirement = Requirement(line)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                pins[requirement.name.lower()] = f"{requirement.name}=={spec.version}"
    return sorted(pins.values())


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    sys.stdout.write("".join(f"{pin}\n" for pin in floors(root / "pyproject.toml")))
