#!/usr/bin/env bash
# Renders the operator's report in headless Chromium (Debian's package) and saves a PNG.
# Usage: scripts/report-screenshot.sh REPORT.html OUT.png
set -euo pipefail
html=$(realpath "$1")
out=$(realpath -m "$2")
if ! command -v chromium >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --window-size=1000,2400 --screenshot="$out" "file://$html" >/dev/null 2>&1
test -s "$out"
echo "$out"
