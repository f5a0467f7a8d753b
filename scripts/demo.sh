#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, start the private PostgreSQL,
# migrate a fresh demo database, generate a week of traffic, and run the nightly jobs.
# Usage: scripts/demo.sh [USERS] [DAYS]      (default 2000 users, 7 days)
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-2000}
days=${2:-7}
scripts/install-deps.sh
swift build -c release 2>&1 | tail -1
bin="$PWD/.build/release/chatstore"
"$bin" local start
dir=$("$bin" local status --json | jq -r .directory)
out="${CHATSTORE_DEMO_OUT:-$PWD/.chatstore/demo}"
mkdir -p "$out"
psql -qX "host=$dir dbname=postgres user=postgres" -c "DROP DATABASE IF EXISTS chatstore_demo WITH (FORCE)" -c "CREATE DATABASE chatstore_demo"
export DATABASE_URL="host=$dir dbname=chatstore_demo user=postgres"

echo "== migrate"
"$bin" migrate
echo "== generate: $users users, $days days"
"$bin" generate --users "$users" --days "$days" --seed 1 --answer-key "$out/answer-key.json"
echo "== nightly"
rc=0
"$bin" nightly --metrics-file "$out/chatstore.prom" || rc=$?
# 2: anomalies found (the generator plants them on purpose); 4: coverage warnings.
if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then echo "nightly failed with exit code $rc" >&2; exit "$rc"; fi
echo "== archive of the oldest day"
oldest="messages_p$(psql -qAtX "$DATABASE_URL" -c "SELECT to_char(min(sent_at) AT TIME ZONE 'UTC', 'YYYYMMDD') FROM chat.messages")"
"$bin" archive export --partition "$oldest" --archive-dir "$out/archive"
"$bin" archive verify "$out/archive/$oldest"
echo "archive of $oldest: $out/archive/$oldest"
echo "== planted anomalies (answer key) vs what the audit found: see above"
jq -c .anomalies "$out/answer-key.json"
echo "answer key: $out/answer-key.json; Prometheus metrics: $out/chatstore.prom"
echo "database: psql \"$DATABASE_URL\""
