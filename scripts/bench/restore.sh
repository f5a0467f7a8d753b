#!/usr/bin/env bash
# Benchmark: `chatstore archive restore` of one day against `psql \copy FROM` of the same rows
# (COPY text files) into the same schema and the same empty partitions (issue 13).
# Usage: scripts/bench/restore.sh [USERS] [MESSAGES_PER_USER_DAY] [RUNS]   (default 8000, 45, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
users=${1:-8000}
mpud=${2:-45}
runs=${3:-3}
swift build -c release >/dev/null
bin=$PWD/.build/release/chatstore
dir=/tmp/chatstore-bench-$(id -u)
work=$(mktemp -d /tmp/chatstore-bench-restore.XXXX)
trap 'rm -rf "$work"' EXIT
"$bin" local start --dir "$dir" --no-fsync >/dev/null
admin="host=$dir dbname=postgres user=postgres"
url() { echo "host=$dir dbname=$1 user=postgres"; }
src=$(url bench_rs_src)
start=$(date -u -d "-3 days" +%Y-%m-%d)
if [ "${REUSE_DB:-0}" != 1 ] || ! psql -qAtX "$src" -c "SELECT 1 FROM chat.messages LIMIT 1" >/dev/null 2>&1; then
  psql -qX "$admin" -c "DROP DATABASE IF EXISTS bench_rs_src WITH (FORCE)" -c "CREATE DATABASE bench_rs_src"
  "$bin" migrate -q --database-url "$src"
  "$bin" generate --quiet --users "$users" --days 1 --messages-per-user-day "$mpud" --seed 4 --start "$start" --database-url "$src"
fi
# The day generated (a reused database keeps the day it was made with).
start=$(psql -qAtX "$src" -c "SELECT (min(sent_at) AT TIME ZONE 'UTC')::date FROM chat.messages")
part="messages_p$(echo "$start" | tr -d -)"; rpart="receipts_p$(echo "$start" | tr -d -)"
lo="$start 00:00:00+00"; hi="$(date -u -d "$start +1 day" +%Y-%m-%d) 00:00:00+00"
mcols="conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at, deleted_at"
rcols="conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at"
psql -qX "$src" -c "DELETE FROM chat.archives"
"$bin" archive export --quiet --partition "$part" --archive-dir "$work/arch" --database-url "$src"
psql -qX "$src" -c "\\copy (SELECT $mcols FROM chat.messages WHERE sent_at >= '$lo' AND sent_at < '$hi') to '$work/messages.copy'"
psql -qX "$src" -c "\\copy (SELECT $rcols FROM chat.receipts WHERE sent_at >= '$lo' AND sent_at < '$hi') to '$work/receipts.copy'"
for t in users conversations members media; do psql -qX "$src" -c "\\copy chat.$t to '$work/$t.copy'"; done
msgs=$(wc -l < "$work/messages.copy"); rcpts=$(wc -l < "$work/receipts.copy"); rows=$((msgs + rcpts))
copymb=$(( ($(stat -c %s "$work/messages.copy") + $(stat -c %s "$work/receipts.copy")) / 1048576 ))
# A target database with the users, conversations, members and media, and no messages.
fresh() {
  psql -qX "$admin" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
  "$bin" migrate -q --database-url "$(url "$1")"
  for t in users conversations members media; do psql -qX "$(url "$1")" -c "\\copy chat.$t from '$work/$t.copy'"; done
}
: > "$work/ours"; : > "$work/psql"
for r in $(seq "$runs"); do
  fresh bench_rs_ours
  /usr/bin/time -f "%e %M" -o "$work/t" "$bin" archive restore --quiet "$work/arch/$part" --database-url "$(url bench_rs_ours)"
  cat "$work/t" >> "$work/ours"
  # The baseline loads into the same empty partitions: made by a restore, then emptied.
  fresh bench_rs_psql
  "$bin" archive restore --quiet "$work/arch/$part" --database-url "$(url bench_rs_psql)"
  psql -qX "$(url bench_rs_psql)" -c "TRUNCATE chat.$part, chat.$rpart" -c "VACUUM ANALYZE chat.$part, chat.$rpart"
  /usr/bin/time -f "%e %M" -o "$work/t" bash -c "psql -qX '$(url bench_rs_psql)' -c \"\\\\copy chat.messages ($mcols) from '$work/messages.copy'\" && psql -qX '$(url bench_rs_psql)' -c \"\\\\copy chat.receipts ($rcols) from '$work/receipts.copy'\""
  cat "$work/t" >> "$work/psql"
done
median() { sort -n "$work/$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rss() { awk 'BEGIN{m=0} {if ($2>m) m=$2} END {print int(m/1024)}' "$work/$1"; }
o=$(median ours); p=$(median psql)
same=$(for db in bench_rs_ours bench_rs_psql; do psql -qAtX "$(url $db)" -c "SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM (SELECT $mcols FROM chat.messages) x"; done | uniq | wc -l)
printf "partition %s: %s messages, %s receipts (%s MB as COPY text); median of %s runs\n\n" "$part" "$msgs" "$rcpts" "$copymb" "$runs"
printf "| benchmark | seconds | rows/s | ratio | peak RSS MB |\n|---|---|---|---|---|\n"
awk -v t="$o" -v r="$rows" -v p="$p" -v m="$(rss ours)" 'BEGIN{printf "| chatstore archive restore (verify, then COPY into the new partitions) | %.2f | %d | %.2fx the speed of psql \\\\copy | %d |\n", t, r/t, p/t, m}'
awk -v t="$p" -v r="$rows" -v m="$(rss psql)" 'BEGIN{printf "| psql \\\\copy FROM (COPY text, same rows, same empty partitions) | %.2f | %d | 1.00x | %d |\n", t, r/t, m}'
echo; echo "same messages in both databases: $([ "$same" = 1 ] && echo yes || echo NO)"
