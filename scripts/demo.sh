#!/usr/bin/env bash
# One command for a newcomer: a simulated model writes a prediction log and the sidecar serves
# live metrics from it. Extra arguments go to `model-exporter demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-system-deps.sh --python

if ! .venv/bin/python -c '' >/dev/null 2>&1; then
  python3 -m venv --clear .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  --constraint requirements/lock.txt -e .

exec .venv/bin/model-exporter demo "$@"
