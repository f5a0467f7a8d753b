#!/usr/bin/env bash
# The main job on a fresh machine: install, build, start the private PostgreSQL, and run what
# chatstore does end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release
bin="$PWD/.build/release/chatstore"
"$bin" local start
echo "== migrate"
"$bin" migrate
"$bin" migrate status
echo "== partitions"
"$bin" partitions ensure
