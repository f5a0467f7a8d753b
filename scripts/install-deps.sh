#!/usr/bin/env bash
# Installs the system packages chatstore needs on Debian 12 (only those missing).
set -euo pipefail
packages=(libpq-dev libzstd-dev postgresql-15 postgresql-client-15 zstd pkg-config jq)
# --test: also what the test suite checks against (promtool, from Debian's prometheus package,
# for `promtool check metrics` of the nightly textfile; its server is not started by us).
[ "${1:-}" = "--test" ] && packages+=(prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift not found on PATH (expected Swift 6 at /opt/swift)" >&2; exit 1; }
