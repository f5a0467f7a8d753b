#!/usr/bin/env bash
# Benchmark: the nightly run for one new day over 7 and over 70 days of history (same daily
# volume), and a full unread recompute against the fastest hand-written SQL statement.
# Usage: scripts/bench/nightly.sh [USERS] [RUNS]     (default 2000 users, 3 runs of the unread comparison)
set -euo pipefail
cd "$(dirname "$0")/../.."
users=${1:-2000}
runs=${2:-3}
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
# delivery, read or leave that happened after T0 (the start of the new day), are set aside; the
# first nightly runs as of T0, the new day is replayed, and the second nightly is measured.
setup() { # DB HISTORY_DAYS
  local db=$1 hist=$2
  psql -qX "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  "$bin" migrate -q --database-url "$(url "$db")"
  local start; start=$(date -u -d "-$((hist + 1)) days" +%Y-%m-%d)
  "$bin" generate --quiet --users "$users" --days $((hist + 1)) --seed 3 --start "$start" --database-url "$(url "$db")"
  t0=$(date -u -d "-1 days" +%Y-%m-%d)
  psql -qX "$(url "$db")" -v t0="'$t0'" <<'SQL'
CREATE TABLE bench_new_messages AS SELECT * FROM chat.messages WHERE sent_at >= :t0;
CREATE TABLE bench_new_receipts AS SELECT * FROM chat.receipts WHERE sent_at >= :t0;
CREATE TABLE bench_new_presence AS SELECT * FROM chat.presence_events WHERE occurred_at >= :t0;
CREATE TABLE bench_later_receipts AS SELECT * FROM chat.receipts WHERE sent_at < :t0 AND (delivered_at >= :t0 OR read_at >= :t0);
CREATE TABLE bench_later_leaves AS SELECT * FROM chat.members WHERE left_at >= :t0;
DELETE FROM chat.receipts WHERE sent_at >= :t0;
DELETE FROM chat.messages WHERE sent_at >= :t0;
DELETE FROM chat.presence_events WHERE occurred_at >= :t0;
UPDATE chat.receipts SET delivered_at = CASE WHEN delivered_at >= :t0 THEN NULL ELSE delivered_at END,
                         read_at = CASE WHEN read_at >= :t0 THEN NULL ELSE read_at END
 WHERE sent_at < :t0 AND (delivered_at >= :t0 OR read_at >= :t0);
UPDATE chat.receipts SET status = CASE WHEN read_at IS NOT NULL THEN 3 WHEN delivered_at IS NOT NULL THEN 2 ELSE 1 END, updated_at = :t0
 WHERE sent_at < :t0 AND (message_id, recipient_id) IN (SELECT message_id, recipient_id FROM bench_later_receipts);
UPDATE chat.members SET left_at = NULL WHERE left_at >= :t0;
VACUUM ANALYZE;
SQL
  "$bin" nightly --quiet --now "${t0}T00:00:00Z" --database-url "$(url "$db")" || true
  psql -qX "$(url "$db")" <<'SQL'
INSERT INTO chat.messages SELECT * FROM bench_new_messages;
INSERT INTO chat.receipts SELECT * FROM bench_new_receipts;
INSERT INTO chat.presence_events SELECT * FROM bench_new_presence;
UPDATE chat.receipts r SET status = l.status, delivered_at = l.delivered_at, read_at = l.read_at, updated_at = now()
  FROM bench_later_receipts l
 WHERE r.conversation_id = l.conversation_id AND r.message_id = l.message_id AND r.recipient_id = l.recipient_id AND r.sent_at = l.sent_at;
UPDATE chat.members m SET left_at = l.left_at FROM bench_later_leaves l
 WHERE m.conversation_id = l.conversation_id AND m.user_id = l.user_id AND m.joined_at = l.joined_at;
ANALYZE;
SQL
}

setup bench_n7 7
read n7_s n7_kb < <(timed "$bin" nightly --quiet --database-url "$(url bench_n7)")
drift7=$("$bin" jobs unread --verify --json --database-url "$(url bench_n7)" | jq .driftCount || true)
setup bench_n70 70
read n70_s n70_kb < <(timed "$bin" nightly --quiet --database-url "$(url bench_n70)")
drift70=$("$bin" jobs unread --verify --json --database-url "$(url bench_n70)" | jq .driftCount || true)
late=$(psql -qAtX "$(url bench_n70)" -c "SELECT count(*) FROM bench_later_receipts WHERE read_at IS NOT NULL AND sent_at < (SELECT min(sent_at) FROM bench_new_messages) - interval '2 days'")
m7=$(psql -qAtX "$(url bench_n7)" -c "SELECT count(*) FROM chat.messages"); m70=$(psql -qAtX "$(url bench_n70)" -c "SELECT count(*) FROM chat.messages")
new=$(psql -qAtX "$(url bench_n70)" -c "SELECT count(*) FROM bench_new_messages")

if [ "$runs" -eq 0 ]; then
  printf "| benchmark | history | messages | seconds | peak RSS MB |\n|---|---|---|---|---|\n"
  printf "| nightly, one new day (%s new messages) | 7 days | %s | %s | %s |\n" "$new" "$m7" "$n7_s" "$((n7_kb / 1024))"
  printf "| nightly, one new day | 70 days | %s | %s | %s |\n" "$m70" "$n70_s" "$((n70_kb / 1024))"
  awk -v a="$n7_s" -v b="$n70_s" 'BEGIN{printf "\n70-day / 7-day nightly time: %.2fx\n", b/a}'
  echo "unread rows differing from a full recompute after the incremental night: $drift7 (7 days), $drift70 (70 days); reads of messages more than 2 days old that night (70 days): $late"
  for d in bench_n7 bench_n70; do echo "$d per job (second night):"; psql -qAtX "$(url $d)" -c "SELECT job, round(extract(epoch FROM finished_at - started_at)::numeric, 2) FROM chat.job_runs WHERE run_id > (SELECT max(run_id) FROM chat.job_runs WHERE job = 'last-seen') - 5 ORDER BY run_id" | tr '\n' ' '; echo; done
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
    /usr/bin/time -f "%e" -a -o "$work/hand$i" psql -qX "$(url $db)" -f "$work/hand$i.sql" >/dev/null
  done
  /usr/bin/time -f "%e" -a -o "$work/job" "$bin" jobs unread --full --quiet --database-url "$(url $db)"
done
median() { sort -n "$work/$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
h1=$(median hand1); h2=$(median hand2); h3=$(median hand3); job=$(median job)
best=$(printf "%s\n%s\n%s\n" "$h1" "$h2" "$h3" | sort -n | head -1)

printf "| benchmark | history | messages | seconds | peak RSS MB |\n|---|---|---|---|---|\n"
printf "| nightly, one new day (%s new messages) | 7 days | %s | %s | %s |\n" "$new" "$m7" "$n7_s" "$((n7_kb / 1024))"
printf "| nightly, one new day | 70 days | %s | %s | %s |\n" "$m70" "$n70_s" "$((n70_kb / 1024))"
awk -v a="$n7_s" -v b="$n70_s" 'BEGIN{printf "\n70-day / 7-day nightly time: %.2fx\n", b/a}'
echo "unread rows differing from a full recompute after the incremental night: $drift7 (7 days), $drift70 (70 days); reads of messages more than 2 days old that night (70 days): $late"
"$bin" jobs unread --repair --quiet --database-url "$(url bench_n70)" || true
printf "\nfull unread recompute over %s messages (median of %s): job %s s; hand-written: NOT EXISTS %s s, anti-join via DISTINCT %s s, the job's own query alone %s s; job / fastest = " "$m70" "$runs" "$job" "$h1" "$h2" "$h3"
awk -v j="$job" -v b="$best" 'BEGIN{printf "%.2fx\n", j/b}'
