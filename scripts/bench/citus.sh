#!/usr/bin/env bash
# Benchmark: the same nightly on plain PostgreSQL and on Citus (a coordinator and two workers,
# scripts/citus-cluster.sh), on the same generated data: the first nightly over the history, then
# the nightly for one new day, then a full unread recompute, a full receipt audit and the report.
# Needs Citus installed into PostgreSQL 15 (docs/citus.md); prints a Markdown table.
# Usage: scripts/bench/citus.sh [USERS] [DAYS]        default 2000 users, 7 days + 1 new day
set -euo pipefail
cd "$(dirname "$0")/../.."
users=${1:-2000}
days=${2:-7}
swift build -c release >/dev/null
bin=$PWD/.build/release/chatstore
pgdir=/tmp/chatstore-bench-$(id -u)
work=$(mktemp -d /tmp/chatstore-bench-citus.XXXX)
trap 'rm -rf "$work"' EXIT
"$bin" local start --dir "$pgdir" --no-fsync >/dev/null
scripts/citus-cluster.sh start >/dev/null
timed() { /usr/bin/time -f "%e" -o "$work/t" "$@" >/dev/null 2>"$work/err" || true; tail -1 "$work/t"; }
start=$(date -u -d "-$((days + 1)) days" +%Y-%m-%d)
t0=$(date -u -d "-1 days" +%Y-%m-%d)

setup() { # URL [--citus]: migrate, generate, set the last day aside, first nightly as of its start
  local url=$1; shift
  "$bin" migrate -q "$@" --database-url "$url"
  "$bin" generate --quiet --users "$users" --days $((days + 1)) --seed 3 --start "$start" --database-url "$url"
  psql -qX "$url" -v t0="'$t0'" <<'SQL'
CREATE TABLE bench_new_messages AS SELECT * FROM chat.messages WHERE sent_at >= :t0;
CREATE TABLE bench_new_receipts AS SELECT * FROM chat.receipts WHERE sent_at >= :t0;
CREATE TABLE bench_new_presence AS SELECT * FROM chat.presence_events WHERE occurred_at >= :t0;
ALTER TABLE bench_new_messages DROP COLUMN change_xid;
ALTER TABLE bench_new_receipts DROP COLUMN change_xid;
ALTER TABLE bench_new_presence DROP COLUMN change_xid;
DELETE FROM chat.receipts WHERE sent_at >= :t0;
DELETE FROM chat.messages WHERE sent_at >= :t0;
DELETE FROM chat.presence_events WHERE occurred_at >= :t0;
VACUUM ANALYZE;
SQL
  first=$(timed "$bin" nightly --quiet --now "${t0}T00:00:00Z" --database-url "$url")
  psql -qX "$url" <<'SQL'
INSERT INTO chat.messages SELECT * FROM bench_new_messages;
INSERT INTO chat.receipts SELECT * FROM bench_new_receipts;
INSERT INTO chat.presence_events SELECT * FROM bench_new_presence;
ANALYZE;
SQL
}

measure() { # NAME URL [--citus]
  local name=$1 url=$2; shift 2
  setup "$url" "$@"
  local night unread audit report
  night=$(timed "$bin" nightly --quiet --database-url "$url")
  unread=$(timed "$bin" jobs unread --full --quiet --database-url "$url")
  audit=$(timed "$bin" jobs receipts --from "$start" --quiet --database-url "$url")
  report=$(timed "$bin" report --days 7 --out "$work/$name.html" --database-url "$url")
  drift=$("$bin" jobs unread --verify --json --database-url "$url" | sed -n 's/.*"driftCount" : \([0-9]*\).*/\1/p')
  echo "$name $first $night $unread $audit $report $drift" >> "$work/results"
}

psql -qX "host=$pgdir dbname=postgres user=postgres" -c "DROP DATABASE IF EXISTS bench_citus_pg WITH (FORCE)" -c "CREATE DATABASE bench_citus_pg"
measure postgres "host=$pgdir dbname=bench_citus_pg user=postgres"
scripts/citus-cluster.sh dropdb bench_citus >/dev/null 2>&1 || true
scripts/citus-cluster.sh createdb bench_citus >/dev/null
measure citus "$(scripts/citus-cluster.sh url bench_citus)" --citus
echo "| run ($users users, $days days + 1) | first nightly | nightly, one new day | unread --full | receipt audit, all days | report --days 7 | unread drift |"
echo "|---|---|---|---|---|---|---|"
while read -r name a b c d e f; do echo "| $name | $a s | $b s | $c s | $d s | $e s | $f |"; done < "$work/results"
