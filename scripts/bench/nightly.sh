#!/usr/bin/env bash
# Benchmark: the nightly run for one new day over 7 and over 70 days of history (same daily
# volume), and a full unread recompute against the fastest hand-written SQL statement.
# Usage: scripts/bench/nightly.sh [USERS] [RUNS] [NIGHTS]
#   default 2000 users, 3 runs of the unread comparison (0 skips it), 5 measured nights per history
set -euo pipefail
cd "$(dirname "$0")/../.."
users=${1:-2000}
runs=${2:-3}
nights=${3:-5}
swift build -c release >/dev/null
bin=$PWD/.build/release/chatstore
dir=/tmp/chatstore-bench-$(id -u)
work=$(mktemp -d /tmp/chatstore-bench-nightly.XXXX)
trap 'rm -rf "$work"' EXIT
"$bin" local start --dir "$dir" --no-fsync >/dev/null
admin="host=$dir dbname=postgres user=postgres"
url() { echo "host=$dir dbname=$1 user=postgres"; }
timed() { /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null || true; cat "$work/t" | tail -1; }

# Build HISTORY days of history plus one new day, then "rewind" the new day: its rows, and every
# delivery, read, leave or deletion that happened after T0 (the start of the new day), are set aside; the
# first nightly runs as of T0, the new day is replayed, and the second nightly is measured.
setup() { # DB HISTORY_DAYS
  local db=$1 hist=$2
  psql -qX "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  "$bin" migrate -q --database-url "$(url "$db")"
  local start; start=$(date -u -d "-$((hist + 1)) days" +%Y-%m-%d)
  "$bin" generate --quiet --users "$users" --days $((hist + 1)) --seed 3 --start "$start" --database-url "$(url "$db")"
  t0=$(date -u -d "-1 days" +%Y-%m-%d)
  psql -qX "$(url "$db")" -v t0="'$t0'" -f scripts/bench/rewind-day.sql -c "VACUUM ANALYZE"
  "$bin" nightly --quiet --now "${t0}T00:00:00Z" --database-url "$(url "$db")" || true
  psql -qX "$(url "$db")" -f scripts/bench/replay-day.sql -c "ANALYZE" -c "CREATE TABLE bench_t0 AS SELECT '$t0'::date AS t0"
}

# Each database is built once and kept as a snapshot (bench_n7_snap, bench_n70_snap); every
# measured night starts from a fresh copy of it. The nights alternate between the two histories
# (7, 70, 7, 70, ...) so both see the same machine conditions, and the medians are reported.
# REUSE=1 reuses the snapshots a previous run left instead of generating them again.
prepare() { # DB HISTORY_DAYS
  if [ "${REUSE:-0}" = 1 ] && psql -qAtX "$admin" -c "SELECT 1 FROM pg_database WHERE datname = '$1_snap'" | grep -q 1; then
    return
  fi
  setup "$1" "$2"
  psql -qX "$admin" -c "DROP DATABASE IF EXISTS $1_snap" -c "CREATE DATABASE $1_snap TEMPLATE $1"
}
prepare bench_n7 7
prepare bench_n70 70
for i in $(seq "$nights"); do
  for n in 7 70; do
    # A file-level copy, then a checkpoint: the copy's writes (a WAL-logged copy puts the whole
    # database through WAL and shared buffers) are done before the night starts instead of being
    # flushed during it, which made the 70-day nights vary from 3.9 to 5.4 s.
    psql -qX "$admin" -c "DROP DATABASE IF EXISTS bench_n$n WITH (FORCE)" -c "CREATE DATABASE bench_n$n TEMPLATE bench_n${n}_snap STRATEGY FILE_COPY" -c "CHECKPOINT"
    # As of 02:00 the day after the new day, whenever the snapshot was made.
    now=$(psql -qAtX "$(url bench_n$n)" -c "SELECT to_char(t0 + 1, 'YYYY-MM-DD') || 'T02:00:00Z' FROM bench_t0")
    read s kb < <(timed "$bin" nightly --quiet --now "$now" --database-url "$(url bench_n$n)")
    echo "$s" >> "$work/night$n"; echo "$kb" >> "$work/kb$n"
    psql -qAtX -F ' ' "$(url bench_n$n)" -c "SELECT job, round(extract(epoch FROM finished_at - started_at)::numeric, 2) FROM chat.job_runs WHERE run_id > (SELECT max(run_id) FROM chat.job_runs WHERE job = 'last-seen') - 5 ORDER BY run_id" >> "$work/jobs$n"
  done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
n7_s=$(median "$work/night7"); n70_s=$(median "$work/night70"); n7_kb=$(sort -n "$work/kb7" | tail -1); n70_kb=$(sort -n "$work/kb70" | tail -1)
per_job() { # FILE: "job median" per job, in run order
  awk '{ if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } v[$1, ++c[$1]] = $2 }
       END { for (i = 1; i <= k; i++) { j = order[i]; n = c[j]; for (x = 1; x <= n; x++) a[x] = v[j, x]
             for (x = 1; x <= n; x++) for (y = x + 1; y <= n; y++) if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
             printf "%s %s  ", j, a[int((n + 1) / 2)] } print "" }' "$1"
}
drift7=$("$bin" jobs unread --verify --json --database-url "$(url bench_n7)" | jq .driftCount || true)
drift70=$("$bin" jobs unread --verify --json --database-url "$(url bench_n70)" | jq .driftCount || true)
late=$(psql -qAtX "$(url bench_n70)" -c "SELECT count(*) FROM bench_later_receipts WHERE read_at IS NOT NULL AND sent_at < (SELECT min(sent_at) FROM bench_new_messages) - interval '2 days'")
m7=$(psql -qAtX "$(url bench_n7)" -c "SELECT count(*) FROM chat.messages"); m70=$(psql -qAtX "$(url bench_n70)" -c "SELECT count(*) FROM chat.messages")
new=$(psql -qAtX "$(url bench_n70)" -c "SELECT count(*) FROM bench_new_messages")
report_nights() {
  printf "| benchmark | history | messages | seconds (median of %s) | every night, seconds | peak RSS MB |\n|---|---|---|---|---|---|\n" "$nights"
  printf "| nightly, one new day (%s new messages) | 7 days | %s | %s | %s | %s |\n" "$new" "$m7" "$n7_s" "$(tr '\n' ' ' < "$work/night7")" "$((n7_kb / 1024))"
  printf "| nightly, one new day | 70 days | %s | %s | %s | %s |\n" "$m70" "$n70_s" "$(tr '\n' ' ' < "$work/night70")" "$((n70_kb / 1024))"
  awk -v a="$n7_s" -v b="$n70_s" 'BEGIN{printf "\n70-day / 7-day nightly time (medians): %.2fx\n", b/a}'
  paste "$work/night7" "$work/night70" | awk '{printf "%s%.2fx", (NR > 1 ? ", " : "night by night: "), $2/$1} END {print ""}'
  echo "unread rows differing from a full recompute after the incremental night: $drift7 (7 days), $drift70 (70 days); that night's reads of messages more than 2 days old (70 days): $late"
  echo "per job, median seconds, 7 days:  $(per_job "$work/jobs7")"
  echo "per job, median seconds, 70 days: $(per_job "$work/jobs70")"
}

if [ "$runs" -eq 0 ]; then
  report_nights
  exit 0
fi
# Full unread recompute (the job: compute, upsert, delete) vs hand-written statements that only
# compute the same rows into a table; the fastest of them is the baseline.
db=bench_n70
hand1="CREATE TEMP TABLE h AS SELECT mb.conversation_id, mb.user_id, count(m.message_id) FILTER (WHERE m.sender_id <> mb.user_id AND m.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM chat.receipts r WHERE r.conversation_id = m.conversation_id AND r.message_id = m.message_id AND r.sent_at = m.sent_at AND r.recipient_id = mb.user_id AND (r.status = 3 OR r.read_at IS NOT NULL))) AS unread, max(m.sent_at) FROM chat.members mb LEFT JOIN chat.messages m ON m.conversation_id = mb.conversation_id AND m.sent_at >= mb.joined_at WHERE mb.left_at IS NULL GROUP BY 1, 2"
hand2="CREATE TEMP TABLE h AS SELECT mb.conversation_id, mb.user_id, (count(m.message_id) FILTER (WHERE m.sender_id <> mb.user_id AND m.deleted_at IS NULL) - count(rd.message_id) FILTER (WHERE m.sender_id <> mb.user_id AND m.deleted_at IS NULL))::int AS unread, max(m.sent_at) FROM chat.members mb LEFT JOIN chat.messages m ON m.conversation_id = mb.conversation_id AND m.sent_at >= mb.joined_at LEFT JOIN (SELECT DISTINCT conversation_id, message_id, recipient_id FROM chat.receipts WHERE status = 3 OR read_at IS NOT NULL) rd ON rd.conversation_id = m.conversation_id AND rd.message_id = m.message_id AND rd.recipient_id = mb.user_id WHERE mb.left_at IS NULL GROUP BY 1, 2"
hand3="CREATE TEMP TABLE h AS $(grep -v '^--' Queries/unread_full.sql)"
for r in $(seq "$runs"); do
  for i in 1 2 3; do
    v="hand$i"; echo "${!v}" > "$work/hand$i.sql"
    # The same session settings as the job (JIT off; JIT on made them slower in an earlier run).
    PGOPTIONS="-c jit=off" /usr/bin/time -f "%e" -a -o "$work/hand$i" psql -qX "$(url $db)" -f "$work/hand$i.sql" >/dev/null
  done
  /usr/bin/time -f "%e" -a -o "$work/job" "$bin" jobs unread --full --quiet --database-url "$(url $db)"
done
h1=$(median "$work/hand1"); h2=$(median "$work/hand2"); h3=$(median "$work/hand3"); job=$(median "$work/job")
best=$(printf "%s\n%s\n%s\n" "$h1" "$h2" "$h3" | sort -n | head -1)

report_nights
"$bin" jobs unread --repair --quiet --database-url "$(url bench_n70)" || true
printf "\nfull unread recompute over %s messages (median of %s): job %s s; hand-written: NOT EXISTS %s s, anti-join via DISTINCT %s s, the job's own query alone %s s; job / fastest = " "$m70" "$runs" "$job" "$h1" "$h2" "$h3"
awk -v j="$job" -v b="$best" 'BEGIN{printf "%.2fx\n", j/b}'
