#!/usr/bin/env bash
# Benchmark: a month of a mid-size service on one machine (issue 17). Builds DAYS days at about
# USERS x MPUD messages a day in a private cluster, then measures every command an operator runs
# on it: generate, the first nightly (full), the nightly for one new day (with its per-job
# breakdown), `jobs unread --full`, a full receipt audit, archive export of one day, retire of the
# oldest day, restore, a compliance export of the heaviest user, `report --days 30` and
# `partitions status`; each with its time, rate, client peak RSS, the largest server backend's
# private memory (RssAnon, sampled every second), and temporary files (peak on disk and total).
#
# Usage: scripts/bench/scale.sh [USERS] [DAYS] [MESSAGES_PER_USER_DAY]   (default 20000 31 45)
#   The full size needs ~50 GB of disk and over an hour on 2 cores: run it in the background.
#   Smaller runs: scripts/bench/scale.sh 2000 7 20
#   PHASES=generate,first-nightly,...  run only these phases (default: all, in order)
#   REUSE=1  keep the database and the results of phases already done (rerun the rest)
#   SCALE_DIR=/path  the private cluster's directory (default /tmp/chatstore-scale-UID)
#   NIGHTLY_JOBS=N   --jobs of the nightly runs and the full audit (at most 2 there; default 2: one per core here)
# Results: SCALE_DIR/results.md (a markdown table, one row per phase, appended as phases finish).
set -euo pipefail
cd "$(dirname "$0")/../.."
users=${1:-20000}
days=${2:-31}
mpud=${3:-45}
jobs=${NIGHTLY_JOBS:-2}
all="generate first-nightly nightly unread-full audit-full export retire restore compliance report partitions-status"
phases=${PHASES:-$all}; phases=${phases//,/ }
swift build -c release >/dev/null
bin=$PWD/.build/release/chatstore
dir=${SCALE_DIR:-/tmp/chatstore-scale-$(id -u)}
results=$dir/results.md
done_file=$dir/phases-done
if [ "${REUSE:-0}" != 1 ]; then
  "$bin" local stop --dir "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
fi
"$bin" local start --dir "$dir" --no-fsync >/dev/null
touch "$done_file"
db="host=$dir dbname=chatstore user=postgres"
admin="host=$dir dbname=postgres user=postgres"
work=$dir/work; mkdir -p "$work" "$dir/archive"
q() { psql -qAtX "$db" -c "$1"; }
t0=$(date -u -d "-1 days" +%Y-%m-%d)           # the new day
start=$(date -u -d "-$days days" +%Y-%m-%d)    # the first day

# Server memory and temporary files while a command runs: every second, the largest RssAnon of
# any child of the postmaster (a backend's private memory; shared buffers are not in it) and the
# size of base/pgsql_tmp.
sampler() {
  local pm max=0 tmp=0 a t
  pm=$(head -1 "$dir/data/postmaster.pid")
  trap 'echo "$max $tmp" > "$work/sample"; exit 0' TERM
  while :; do
    for p in $(ps --ppid "$pm" -o pid= 2>/dev/null); do
      a=$(awk '/^RssAnon/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
      [ "${a:-0}" -gt "$max" ] && max=$a
    done
    # (du exits 1 when a file vanishes while it walks: its total is still the first line)
    t=$(du -sk "$dir/data/base/pgsql_tmp" 2>/dev/null | head -1 | cut -f1 || true); t=${t:-0}
    [ "${t:-0}" -gt "$tmp" ] && tmp=$t
    sleep 1 & wait $!
  done
}
temp_bytes() { psql -qAtX "$admin" -c "SELECT coalesce(sum(temp_bytes), 0) FROM pg_stat_database"; }

# measure PHASE ROWS_SQL_OR_NUMBER -- command...: runs it, appends a results row.
measure() {
  local phase=$1 rows=$2; shift 3
  local tb0 tb1 spid s kb smax stmp rate
  tb0=$(temp_bytes)
  sampler & spid=$!
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/$phase.out" 2> "$work/$phase.err" || { rc=$?; [ $rc = 2 ] || echo "$phase: exit $rc (see $work/$phase.err)" >&2; }
  kill -TERM "$spid"; wait "$spid" 2>/dev/null || true
  sleep 1; tb1=$(temp_bytes)
  read -r s kb < <(tail -1 "$work/time"); read -r smax stmp < "$work/sample"
  [[ $rows =~ ^[0-9]+$ ]] || rows=$(q "$rows")
  rate=$(awk -v r="$rows" -v s="$s" 'BEGIN { if (r > 0 && s > 0) printf "%d", r / s; else print "" }')
  [ -s "$results" ] || printf "| phase | seconds | rows | rows/s | client peak RSS MB | largest backend private MB | temp files peak MB | temp files written MB |\n|---|---|---|---|---|---|---|---|\n" > "$results"
  printf "| %s | %s | %s | %s | %d | %d | %d | %d |\n" "$phase" "$s" "$rows" "$rate" $((kb / 1024)) $((smax / 1024)) $((stmp / 1024)) $(((tb1 - tb0) / 1048576)) >> "$results"
  echo "$phase" >> "$done_file"
  tail -1 "$results" >&2
}
want() { [[ " $phases " == *" $1 "* ]] && ! grep -qx "$1" "$done_file"; }
per_job() { q "SELECT string_agg(job || ' ' || round(extract(epoch FROM finished_at - started_at)::numeric, 1) || ' s', ', ' ORDER BY run_id) FROM chat.job_runs WHERE run_id > $1"; }

if want generate; then
  psql -qX "$admin" -c "DROP DATABASE IF EXISTS chatstore WITH (FORCE)" -c "CREATE DATABASE chatstore"
  "$bin" migrate -q --database-url "$db"
  measure generate 0 -- "$bin" generate --quiet --users "$users" --days "$days" --messages-per-user-day "$mpud" --seed 17 --start "$start" --database-url "$db"
  rows=$(q "SELECT (SELECT count(*) FROM chat.messages) + (SELECT count(*) FROM chat.receipts) + (SELECT count(*) FROM chat.presence_events)")
  # The row count was not known before: fill it in.
  s=$(awk -F'|' '$2 ~ / generate / {print $3}' "$results" | tr -d ' ')
  sed -i "s/^| generate | \([^|]*\) | 0 |  |/| generate | \1 | $rows | $(awk -v r="$rows" -v s="$s" 'BEGIN{printf "%d", r/s}') |/" "$results"
  echo "generated: $(q "SELECT count(*) FROM chat.messages") messages, $(q "SELECT count(*) FROM chat.receipts") receipts, $(q "SELECT count(*) FROM chat.presence_events") presence rows, $(q "SELECT pg_size_pretty(pg_database_size(current_database()))")" >> "$dir/notes"
  # Set the last day aside, so that the first nightly runs as of its start and the day can be
  # replayed as new writes (scripts/bench/rewind-day.sql).
  psql -qX "$db" -v t0="'$t0'" -f scripts/bench/rewind-day.sql -c "VACUUM ANALYZE" >/dev/null
fi
if want first-nightly; then
  measure first-nightly "SELECT count(*) FROM chat.messages" -- "$bin" nightly --quiet --jobs "$jobs" --now "${t0}T00:00:00Z" --database-url "$db"
  echo "first nightly per job: $(per_job 0)" >> "$dir/notes"
fi
if want nightly; then
  psql -qX "$db" -f scripts/bench/replay-day.sql -c "ANALYZE" >/dev/null
  last=$(q "SELECT coalesce(max(run_id), 0) FROM chat.job_runs")
  measure nightly "SELECT count(*) FROM bench_new_messages" -- "$bin" nightly --quiet --jobs "$jobs" --database-url "$db"
  echo "nightly for one new day per job: $(per_job "$last")" >> "$dir/notes"
fi
if want unread-full; then
  measure unread-full "SELECT count(*) FROM chat.members" -- "$bin" jobs unread --full --quiet --database-url "$db"
fi
if want audit-full; then
  measure audit-full "SELECT count(*) FROM chat.receipts" -- "$bin" jobs receipts --quiet --jobs "$((jobs > 2 ? 2 : jobs))" --from "$start" --to "$(date -u -d tomorrow +%Y-%m-%d)" --database-url "$db"
fi
day=$(q "SELECT (min(sent_at) AT TIME ZONE 'UTC')::date + 1 FROM chat.messages")   # a full day (not the oldest)
part="messages_p$(echo "$day" | tr -d -)"
if want export; then
  rm -rf "$dir/archive/export"; mkdir -p "$dir/archive/export"
  measure export "SELECT (SELECT count(*) FROM chat.messages WHERE sent_at >= '$day' AND sent_at < date '$day' + 1) + (SELECT count(*) FROM chat.receipts WHERE sent_at >= '$day' AND sent_at < date '$day' + 1)" -- \
    "$bin" archive export --quiet --partition "$part" --archive-dir "$dir/archive/export" --database-url "$db"
fi
oldest=$(q "SELECT (min(sent_at) AT TIME ZONE 'UTC')::date FROM chat.messages")
if want retire; then
  rows=$(q "SELECT (SELECT count(*) FROM chat.messages WHERE sent_at < date '$oldest' + 1) + (SELECT count(*) FROM chat.receipts WHERE sent_at < date '$oldest' + 1)")
  echo "$oldest" > "$work/retired-day"
  age=$(( ($(date -u +%s) - $(date -u -d "$oldest +1 day" +%s)) / 86400 ))
  measure retire "$rows" -- "$bin" partitions retire --quiet --older-than "${age}d" --archive-dir "$dir/archive" --database-url "$db"
fi
if want restore; then
  rday=$(cat "$work/retired-day")
  rows=$(jq '[.files[] | select(.content == "messages" or .content == "receipts") | .rows] | add' "$dir/archive/messages_p$(echo "$rday" | tr -d -)/manifest.json")
  measure restore "$rows" -- "$bin" archive restore --quiet "$dir/archive/messages_p$(echo "$rday" | tr -d -)" --database-url "$db"
fi
if want compliance; then
  heavy=$(q "SELECT sender_id FROM chat.messages GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
  measure compliance 0 -- "$bin" export --quiet --user "$heavy" --out "$work/compliance.ndjson.zst" --database-url "$db"
  lines=$(zstd -dc "$work/compliance.ndjson.zst" | wc -l)
  sed -i "s/^| compliance | \([^|]*\) | 0 |  |/| compliance (user $heavy) | \1 | $lines lines |  |/" "$results"
fi
if want report; then
  measure report "SELECT count(*) FROM chat.daily_activity" -- "$bin" report --quiet --days 30 --out "$work/report.html" --database-url "$db"
fi
if want partitions-status; then
  measure partitions-status "SELECT count(*) FROM pg_inherits" -- "$bin" partitions status --all --database-url "$db"
fi
echo "$(q "SELECT pg_size_pretty(pg_database_size(current_database()))") database; $users users, $days days, $mpud messages/user/day" >> "$dir/notes"
cat "$results"; echo; cat "$dir/notes"
