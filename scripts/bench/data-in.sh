#!/usr/bin/env bash
# Benchmark: `chatstore generate` and `chatstore ingest` against psql \copy of the same rows.
# Usage: scripts/bench/data-in.sh [GEN_USERS] [INGEST_USERS] [DAYS]   (default 20000, 3300, 7)
set -euo pipefail
cd "$(dirname "$0")/../.."
gen_users=${1:-20000}
ing_users=${2:-3300}
days=${3:-7}
swift build -c release >/dev/null
bin=$PWD/.build/release/chatstore
dir=/tmp/chatstore-bench-$(id -u)
work=$(mktemp -d /tmp/chatstore-bench-data.XXXX)
trap 'rm -rf "$work"' EXIT
"$bin" local start --dir "$dir" --no-fsync >/dev/null
admin="host=$dir dbname=postgres user=postgres"
url() { echo "host=$dir dbname=$1 user=postgres"; }
fresh() { psql -qX "$admin" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"; }
clone_schema() { fresh "$2"; pg_dump --schema-only "$(url "$1")" | psql -qX "$(url "$2")" >/dev/null 2>&1; }
tables="users conversations members media messages receipts presence_events"
timed() { /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null; cat "$work/t"; }
load_files() { # DB TABLES...: psql \copy every table from its file, then ANALYZE like the generator
  local db=$1; shift
  for t in "$@"; do psql -qX "$(url "$db")" -c "\\copy chat.$t from '$work/$t.copy'"; done
  psql -qX "$(url "$db")" -c "ANALYZE chat.messages, chat.receipts, chat.presence_events, chat.members"
}
export_files() { for t in $tables; do psql -qX "$(url "$1")" -c "\\copy (SELECT * FROM chat.$t) to '$work/$t.copy'"; done; }
rows_in() { psql -qAtX "$(url "$1")" -c "SELECT (SELECT count(*) FROM chat.users)+(SELECT count(*) FROM chat.conversations)+(SELECT count(*) FROM chat.members)+(SELECT count(*) FROM chat.media)+(SELECT count(*) FROM chat.messages)+(SELECT count(*) FROM chat.receipts)+(SELECT count(*) FROM chat.presence_events)"; }

# 1. generate vs psql \copy of the same rows (SKIP_GENERATE=1 skips it)
if [ "${SKIP_GENERATE:-0}" != 1 ]; then
fresh bench_gen
"$bin" migrate -q --database-url "$(url bench_gen)"
read gen_s gen_kb < <(timed "$bin" generate --quiet --users "$gen_users" --days "$days" --seed 1 --database-url "$(url bench_gen)")
msgs=$(psql -qAtX "$(url bench_gen)" -c "SELECT count(*) FROM chat.messages")
rows=$(rows_in bench_gen)
export_files bench_gen
clone_schema bench_gen bench_gen_copy
read copy_s copy_kb < <(timed bash -c "$(declare -f load_files url); work=$work; dir=$dir; load_files bench_gen_copy $tables")
[ "$(rows_in bench_gen_copy)" = "$rows" ] || { echo "row counts differ" >&2; exit 1; }
fi

# 2. ingest of NDJSON events vs psql \copy of the equivalent rows
fresh bench_ev
"$bin" migrate -q --database-url "$(url bench_ev)"
"$bin" generate --quiet --users "$ing_users" --days "$days" --seed 2 --database-url "$(url bench_ev)"
# The same events twice: in time order, as a service's log has them (the headline), and grouped
# by type (all messages, then all receipts, then presence: receipts far from their messages).
psql -qAtX "$(url bench_ev)" -f scripts/bench/events-in-time-order.sql > "$work/events.ndjson"
psql -qAtX "$(url bench_ev)" -f scripts/bench/events-from-db.sql > "$work/events-by-type.ndjson"
events=$(wc -l < "$work/events.ndjson")
# The equivalent rows of the events: messages as the events carry them (no media link) and the
# receipts that have a delivery or a read (a receipt event is one of those).
for t in users conversations members presence_events; do psql -qX "$(url bench_ev)" -c "\\copy (SELECT * FROM chat.$t) to '$work/$t.copy'"; done
psql -qX "$(url bench_ev)" -c "\\copy (SELECT conversation_id, message_id, sent_at, sender_id, CASE kind WHEN 'media' THEN 'text' ELSE kind END, body, reply_to_id, client_message_id, NULL, edited_at, deleted_at FROM chat.messages) to '$work/messages.copy'"
psql -qX "$(url bench_ev)" -c "\\copy (SELECT * FROM chat.receipts WHERE delivered_at IS NOT NULL OR read_at IS NOT NULL) to '$work/receipts.copy'"
ev_tables="users conversations members messages receipts presence_events"
# Baseline and the two ingests alternate INGEST_RUNS times (default 3), each into a fresh copy of
# the schema, so all see the same machine conditions; the medians are reported.
# Before each timed step: no autovacuum worker busy with the previous step's tables, a checkpoint.
settle() {
  psql -qX "$admin" -c "CHECKPOINT"
  for _ in $(seq 120); do
    [ "$(psql -qAtX "$admin" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && return
    sleep 1
  done
}
# Every receipt's final state (all but updated_at), to check both orders load the same rows.
receipts_md5="SELECT md5(string_agg(concat_ws(',', conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at), ';' ORDER BY conversation_id, message_id, recipient_id)) FROM chat.receipts"
# ingest_run FILE DB TAG: a timed ingest of FILE into a fresh copy of the schema named DB; appends
# its seconds and peak KB to $work/TAG_s and TAG_kb, and prints the receipts' md5.
ingest_run() {
  clone_schema bench_ev "$2"
  settle
  read s kb < <(timed "$bin" ingest --quiet "$1" --database-url "$(url "$2")")
  echo "$s" >> "$work/$3_s"; echo "$kb" >> "$work/$3_kb"
  psql -qAtX "$(url "$2")" -c "$receipts_md5"
  psql -qX "$(url "$2")" -c "VACUUM ANALYZE"
}
for i in $(seq "${INGEST_RUNS:-3}"); do
  clone_schema bench_ev bench_ev_copy
  settle
  read s kb < <(timed bash -c "$(declare -f load_files url); work=$work; dir=$dir; load_files bench_ev_copy $ev_tables")
  echo "$s" >> "$work/evcopy_s"; echo "$kb" >> "$work/evcopy_kb"
  psql -qX "$(url bench_ev_copy)" -c "VACUUM ANALYZE"
  same_md5=$(ingest_run "$work/events.ndjson" bench_ev_ingest ing)
  same2_md5=$(ingest_run "$work/events-by-type.ndjson" bench_ev_ingest2 ing2)
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
evcopy_s=$(median "$work/evcopy_s"); ing_s=$(median "$work/ing_s"); ing2_s=$(median "$work/ing2_s")
evcopy_kb=$(sort -n "$work/evcopy_kb" | tail -1); ing_kb=$(sort -n "$work/ing_kb" | tail -1); ing2_kb=$(sort -n "$work/ing2_kb" | tail -1)
echo "ingest runs, seconds (baseline / time order / by type): $(paste -d/ "$work/evcopy_s" "$work/ing_s" "$work/ing2_s" | tr '\n' ' ')"
[ "$same_md5" = "$same2_md5" ] || { echo "the two orders loaded different receipts" >&2; exit 1; }
ev_rows=$(psql -qAtX "$(url bench_ev_copy)" -c "SELECT (SELECT count(*) FROM chat.users)+(SELECT count(*) FROM chat.conversations)+(SELECT count(*) FROM chat.members)+(SELECT count(*) FROM chat.messages)+(SELECT count(*) FROM chat.receipts)+(SELECT count(*) FROM chat.presence_events)")
same=$(psql -qAtX "$(url bench_ev_ingest)" -c "SELECT count(*) FROM chat.receipts")
want=$(psql -qAtX "$(url bench_ev_copy)" -c "SELECT count(*) FROM chat.receipts WHERE delivered_at IS NOT NULL OR read_at IS NOT NULL")

printf "| benchmark | rows | baseline s | chatstore s | speed ratio (baseline/chatstore) | chatstore rows/s | peak RSS MB (baseline / chatstore) |\n|---|---|---|---|---|---|---|\n"
[ "${SKIP_GENERATE:-0}" != 1 ] && awk -v r="$rows" -v m="$msgs" -v b="$copy_s" -v c="$gen_s" -v bk="$copy_kb" -v ck="$gen_kb" 'BEGIN{printf "| generate (%d messages) vs psql \\\\copy of the same rows from files | %d | %.2f | %.2f | %.2fx | %d | %d / %d |\n", m, r, b, c, b/c, r/c, bk/1024, ck/1024}'
awk -v r="$events" -v er="$ev_rows" -v b="$evcopy_s" -v c="$ing_s" -v bk="$evcopy_kb" -v ck="$ing_kb" 'BEGIN{printf "| ingest of %d NDJSON events in time order vs psql \\\\copy of the equivalent %d rows | %d | %.2f | %.2f | %.2fx | %d | %d / %d |\n", r, er, r, b, c, b/c, r/c, bk/1024, ck/1024}'
awk -v r="$events" -v er="$ev_rows" -v b="$evcopy_s" -v c="$ing2_s" -v bk="$evcopy_kb" -v ck="$ing2_kb" 'BEGIN{printf "| ingest of the same events grouped by type vs psql \\\\copy of the equivalent %d rows | %d | %.2f | %.2f | %.2fx | %d | %d / %d |\n", er, r, b, c, b/c, r/c, bk/1024, ck/1024}'
echo "ingested receipts: $same (receipts with a delivery or read in the source: $want)"
