#!/usr/bin/env bash
# The project's test command: system deps, .venv, then lint, format, types, the import layering
# contract and the test suite.
# Extra arguments go to pytest (e.g. `scripts/test.sh -x -q -m "not e2e"`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-system-deps.sh

# A venv that no longer runs (Python upgraded or moved) is rebuilt rather than patched.
if ! .venv/bin/python -c '' >/dev/null 2>&1; then
  python3 -m venv --clear .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

failed=()
run() {
  local name=$1
  shift
  echo "==> $name" >&2
  if ! "$@"; then
    failed+=("$name")
  fi
}

# Every step runs even after a failure, so one run reports every kind of problem.
run "ruff check" .venv/bin/ruff check .
run "ruff format" .venv/bin/ruff format --check .
run "mypy" .venv/bin/mypy
run "import layers" .venv/bin/lint-imports --no-cache
run "pytest" .venv/bin/python -m pytest "$@"

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "all checks passed" >&2
