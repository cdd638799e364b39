#!/usr/bin/env bash
# Regenerate requirements/lock.txt: the exact versions that CI, scripts/test.sh, scripts/demo.sh
# and the Dockerfile install (as pip constraints), resolved from pyproject.toml's runtime and dev
# dependencies for Python 3.11, the version of CI and of the image.
#
#   bash scripts/lock.sh              # after a dependency was added or changed: keeps the other pins
#   bash scripts/lock.sh --upgrade    # move every pin to the newest allowed release
#
# Extra arguments go to pip-compile (e.g. `--upgrade-package numpy`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "scripts/lock.sh: the lock is for Python 3.11 (CI and the image); run it with PYTHON=python3.11" >&2
  exit 2
fi

# The package index alone decides the pins: wheel folders or extra indexes configured on this
# machine would pin versions a fresh CI machine or a docker build cannot download.
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT PIP_NO_INDEX
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The header of the lock names this script, not the pip-compile line it runs.
export CUSTOM_COMPILE_COMMAND="bash scripts/lock.sh"

tool=$(mktemp -d)
trap 'rm -rf "$tool"' EXIT
"$python" -m venv "$tool"
"$tool/bin/python" -m pip install --quiet "pip==26.3" "pip-tools==7.6.2"
"$tool/bin/pip-compile" --quiet --extra dev --strip-extras --allow-unsafe \
  --no-emit-index-url --no-emit-trusted-host --no-emit-find-links \
  --output-file requirements/lock.txt "$@" pyproject.toml
echo "requirements/lock.txt written; commit it with the pyproject.toml change" >&2
