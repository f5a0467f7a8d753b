#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, debug and release builds, a private
# PostgreSQL cluster for the run, every test, and a check that the release binary runs alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/install-deps.sh --test

echo "== build (debug)"
swift build --build-tests
echo "== build (release)"
swift build -c release

export CHATSTORE_TEST_DIR="${CHATSTORE_TEST_DIR:-/tmp/chatstore-test-$(id -u)-$$}"
export CHATSTORE_BIN="$root/.build/debug/chatstore"
"$CHATSTORE_BIN" local start --dir "$CHATSTORE_TEST_DIR" --no-fsync
# The tests' temporary files (archives, NDJSON, exports) go under one directory, removed at exit.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/chatstore-test-scratch.XXXXXX")
chmod 755 "$scratch"
cleanup() {
  "$CHATSTORE_BIN" local stop --dir "$CHATSTORE_TEST_DIR" >/dev/null 2>&1 || true
  rm -rf "$CHATSTORE_TEST_DIR" "$scratch"
}
trap cleanup EXIT
# Tests must not pick up a developer's own connection settings.
unset DATABASE_URL PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE || true

echo "== release binary alone in another directory"
alone=$(mktemp -d)
cp "$root/.build/release/chatstore" "$alone/"
(cd / && "$alone/chatstore" --version && "$alone/chatstore" local status --dir "$CHATSTORE_TEST_DIR" >/dev/null)
export CHATSTORE_RELEASE_BIN="$alone/chatstore"

echo "== tests"
TMPDIR="$scratch" swift test --skip-build 2>&1 | tee "${TMPDIR:-/tmp}/chatstore-test-output.txt"
status=${PIPESTATUS[0]}
rm -rf "$alone"
exit "$status"
