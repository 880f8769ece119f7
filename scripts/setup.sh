#!/usr/bin/env bash
# Install everything autodock and its tests need on a fresh Debian machine (idempotent).
#   scripts/setup.sh          system packages + the Python package with test extras
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PACKAGES=(docker.io iptables busybox-static docker-registry curl iproute2
  nginx-light postgresql chromium chromium-driver webhook wrk)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! python3 -c 'import autodock, pytest, selenium, psycopg' 2>/dev/null \
  || [ pyproject.toml -nt "$(python3 -c 'import autodock,os;print(os.path.dirname(autodock.__file__))')" ]; then
  echo "[setup] pip install -e .[test]" >&2
  python3 -m pip install -q --disable-pip-version-check -e '.[test]'
fi
