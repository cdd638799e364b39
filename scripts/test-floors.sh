#!/usr/bin/env bash
# Install the oldest versions pyproject.toml allows (every `>=` floor, exactly; see
# scripts/floors.py) in a venv of their own and run the unit tests there, so a user who gets
# the floors gets a sidecar that was tested with them. CI runs this after scripts/test.sh (which
# installs the system packages and .venv it needs); it stays out of the developer's test command,
# which tests the locked versions only, to keep that fast. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

floors=$(mktemp)
trap 'rm -f "$floors"' EXIT
.venv/bin/python scripts/floors.py >"$floors"

python3 -m venv --clear .venv-floors
.venv-floors/bin/python -m pip install --quiet --disable-pip-version-check \
  --constraint "$floors" -e '.[dev]'
echo "==> unit tests at the declared floors:" $(tr '\n' ' ' <"$floors") >&2
.venv-floors/bin/python -m pytest -q -m "not e2e" -p no:cacheprovider "$@"
