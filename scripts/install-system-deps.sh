#!/usr/bin/env bash
# Installs what the end-to-end tests run against: Debian's real Prometheus (with promtool) and
# Alertmanager, the openssl CLI (the TLS tests make throwaway certificates with it), Chromium and
# its WebDriver (the browser tests of the live page and the replay report: Debian builds both
# from one release, so they always match), plus python3-venv where the system Python cannot
# create a virtualenv, and a C compiler and the Python headers where missing (pip builds the
# native JSON scanner, exporter/_scan.c, with them; the tests check it was built).
#
#   scripts/install-system-deps.sh            everything the test suite needs
#   scripts/install-system-deps.sh --python   only what creating .venv needs (for the demo)
#
# Idempotent: installs only what is missing. Debian's packages start their services from the
# maintainer scripts; the tests start their own instances on free ports, so a policy-rc.d forbids
# service starts during the install (which also keeps it working in containers without an init
# system), and any instance that starts anyway is stopped afterwards.
set -euo pipefail

python_only=false
case "${1:-}" in
  "") ;;
  --python) python_only=true ;;
  *) echo "usage: $0 [--python]" >&2; exit 2 ;;
esac

packages=()
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  packages+=(python3-venv)
fi
if ! command -v gcc >/dev/null 2>&1; then
  packages+=(gcc libc6-dev)
fi
if ! python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' >/dev/null 2>&1; then
  packages+=(python3-dev)
fi
if [ "$python_only" = false ]; then
  if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    packages+=(prometheus)
  fi
  if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
    packages+=(prometheus-alertmanager)
  fi
  if ! command -v openssl >/dev/null 2>&1; then
    packages+=(openssl)
  fi
  if [ ! -x /usr/bin/chromium ]; then
    packages+=(chromium)
  fi
  if [ ! -x /usr/bin/chromedriver ]; then
    packages+=(chromium-driver)
  fi
fi
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi

policy=/usr/sbin/policy-rc.d
created_policy=false
remove_policy() {
  if [ "$created_policy" = true ]; then
    "${sudo[@]}" rm -f "$policy"
  fi
}
trap remove_policy EXIT
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# Temporary: forbid service starts while model-exporter installs its test deps.\nexit 101\n' \
    | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  created_policy=true
fi

echo "installing: ${packages[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${packages[@]}" >/dev/null

remove_policy
created_policy=false

# Stop any system instance that started despite the policy (ports 9090/9093 stay free).
for service in prometheus prometheus-alertmanager; do
  if [ -d /run/systemd/system ]; then
    "${sudo[@]}" systemctl stop "$service" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$service" ]; then
    if "${sudo[@]}" "/etc/init.d/$service" status >/dev/null 2>&1; then
      "${sudo[@]}" "/etc/init.d/$service" stop >/dev/null 2>&1 || true
    fi
  fi
done

for cmd in prometheus promtool prometheus-alertmanager openssl chromium chromedriver; do
  if [ "$python_only" = false ] && ! command -v "$cmd" >/dev/null 2>&1; then
    echo "error: $cmd is still missing after the install" >&2
    exit 1
  fi
done
