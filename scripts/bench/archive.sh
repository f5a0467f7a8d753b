#!/usr/bin/env bash
# Benchmark: `chatstore archive export` of a ~1M-message partition against the best shell pipeline
# writing the same content (psql row_to_json | zstd -3 -T2, one file per table), and against a bare
# COPY into /dev/null (the floor); then restore throughput.
# Usage: scripts/bench/archive.sh [USERS] [MESSAGES_PER_USER_DAY] [RUNS]   (default 20000, 55, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
users=${1:-20000}
mpud=${2:-55}
runs=${3:-3}
swift build -c release >/dev/null
bin=$PWD/.build/release/chatstore
dir=/tmp/chatstore-bench-$(id -u)
work=$(mktemp -d /tmp/chatstore-bench-archive.XXXX)
trap 'rm -rf "$work"' EXIT
"$bin" local start --dir "$dir" --no-fsync >/dev/null
admin="host=$dir dbname=postgres user=postgres"
url() { echo "host=$dir dbname=$1 user=postgres"; }
db=$(url bench_arch)
start=$(date -u -d "-3 days" +%Y-%m-%d)
# REUSE_DB=1 keeps an already generated bench_arch (generation is the slow part).
if [ "${REUSE_DB:-0}" != 1 ] || ! psql -qAtX "$db" -c "SELECT 1 FROM chat.messages LIMIT 1" >/dev/null 2>&1; then
  psql -qX "$admin" -c "DROP DATABASE IF EXISTS bench_arch WITH (FORCE)" -c "CREATE DATABASE bench_arch"
  "$bin" migrate -q --database-url "$db"
  "$bin" generate --quiet --users "$users" --days 1 --messages-per-user-day "$mpud" --seed 4 --start "$start" --database-url "$db"
fi
psql -qX "$db" -c "DELETE FROM chat.archives"

part="messages_p$(echo "$start" | tr -d -)"
lo="$start 00:00:00+00"; hi="$(date -u -d "$start +1 day" +%Y-%m-%d) 00:00:00+00"
msgs=$(psql -qAtX "$db" -c "SELECT count(*) FROM chat.messages WHERE sent_at >= '$lo' AND sent_at < '$hi'")
rcpts=$(psql -qAtX "$db" -c "SELECT count(*) FROM chat.receipts WHERE sent_at >= '$lo' AND sent_at < '$hi'")
mcols="conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at, deleted_at"
rcols="conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at"
measure() { local label=$1; shift; /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null; cat "$work/t" >> "$work/time_$label"; }
for r in $(seq "$runs"); do
  rm -rf "$work/ours"; mkdir -p "$work/ours"
  measure ours "$bin" archive export --quiet --no-verify --partition "$part" --archive-dir "$work/ours" --database-url "$db"
  rm -rf "$work/ours2"; mkdir -p "$work/ours2"
  measure ours_verified "$bin" archive export --quiet --partition "$part" --archive-dir "$work/ours2" --database-url "$db"
  psql -qX "$db" -c "DELETE FROM chat.archives"
  measure shell bash -c "psql -qX '$db' -c \"\\\\copy (SELECT row_to_json(m) FROM (SELECT $mcols FROM chat.messages WHERE sent_at >= '$lo' AND sent_at < '$hi' ORDER BY conversation_id, message_id) m) to stdout\" | zstd -3 -T2 -q -f -o '$work/shell-messages.ndjson.zst' && psql -qX '$db' -c \"\\\\copy (SELECT row_to_json(r) FROM (SELECT $rcols FROM chat.receipts WHERE sent_at >= '$lo' AND sent_at < '$hi' ORDER BY conversation_id, message_id, recipient_id, sent_at) r) to stdout\" | zstd -3 -T2 -q -f -o '$work/shell-receipts.ndjson.zst'"
  measure floor bash -c "psql -qX '$db' -c \"\\\\copy (SELECT $mcols FROM chat.messages WHERE sent_at >= '$lo' AND sent_at < '$hi') to stdout\" > /dev/null && psql -qX '$db' -c \"\\\\copy (SELECT $rcols FROM chat.receipts WHERE sent_at >= '$lo' AND sent_at < '$hi') to stdout\" > /dev/null"
done
median() { sort -n "$work/time_$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
maxrss() { awk 'BEGIN{m=0} {if ($2>m) m=$2} END {print int(m/1024)}' "$work/time_$1"; }
o=$(median ours); ov=$(median ours_verified); s=$(median shell); f=$(median floor)
arch="$work/ours/$part"
raw=$(jq '[.files[] | select(.content == "messages" or .content == "receipts") | .uncompressed_bytes] | add' "$arch/manifest.json")
ours_z=$(( $(stat -c %s "$arch/messages.ndjson.zst") + $(stat -c %s "$arch/receipts.ndjson.zst") ))
shell_z=$(( $(stat -c %s "$work/shell-messages.ndjson.zst") + $(stat -c %s "$work/shell-receipts.ndjson.zst") ))
shell_raw=$(( $(zstd -dc "$work/shell-messages.ndjson.zst" | wc -c) + $(zstd -dc "$work/shell-receipts.ndjson.zst" | wc -c) ))
# Same rows? Compare parsed JSON line by line (field order and number formatting may differ).
same=$(python3 - "$arch" "$work" <<'PY'
import json, subprocess, sys
arch, work = sys.argv[1], sys.argv[2]
for t in ("messages", "receipts"):
    a = subprocess.run(["zstd", "-dc", f"{arch}/{t}.ndjson.zst"], capture_output=True).stdout.splitlines()
    b = subprocess.run(["zstd", "-dc", f"{work}/shell-{t}.ndjson.zst"], capture_output=True).stdout.splitlines()
    def uncopy(line):  # psql \copy escapes the JSON text once more (COPY text format): undo it
        out, i = [], 0
        while i < len(line):
            c = line[i]
            if c == "\\" and i + 1 < len(line):
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(line[i + 1], line[i + 1])); i += 2
            else:
                out.append(c); i += 1
        return "".join(out)
    def norm(o):
        return {k: (v[2:] if isinstance(v, str) and v.startswith("\\x") else v) for k, v in o.items()}   # bytea: hex without \x
    if len(a) != len(b) or any(norm(json.loads(x)) != norm(json.loads(uncopy(y.decode()))) for x, y in zip(a, b)):
        print("DIFFERENT"); sys.exit()
print("same rows and values")
PY
)
# Restore into a database with the same users and conversations.
psql -qX "$admin" -c "DROP DATABASE IF EXISTS bench_restore WITH (FORCE)" -c "CREATE DATABASE bench_restore"
rdb=$(url bench_restore)
"$bin" migrate -q --database-url "$rdb"
for t in users conversations members; do psql -qX "$db" -c "\\copy chat.$t to '$work/$t.copy'"; psql -qX "$rdb" -c "\\copy chat.$t from '$work/$t.copy'"; done
/usr/bin/time -f "%e %M" -o "$work/rt" "$bin" archive restore --quiet "$arch" --database-url "$rdb"
read rs rkb < "$work/rt"
rows=$((msgs + rcpts))
printf "partition %s: %s messages, %s receipts, %.0f MB of NDJSON; median of %s runs\n\n" "$part" "$msgs" "$rcpts" "$(echo "$raw/1048576" | bc -l)" "$runs"
printf "| benchmark | seconds | ratio | rows/s | MB/s (NDJSON) | peak RSS MB |\n|---|---|---|---|---|---|\n"
awk -v s="$s" -v o="$o" -v r="$rows" -v raw="$raw" -v rss="$(maxrss ours)" 'BEGIN{printf "| chatstore archive export (no verify) | %.2f | %.2fx faster than the shell pipeline | %d | %.0f | %d |\n", o, s/o, r/o, raw/1048576/o, rss}'
awk -v s="$s" -v o="$ov" -v r="$rows" -v raw="$raw" -v rss="$(maxrss ours_verified)" 'BEGIN{printf "| chatstore archive export + verify + ledger | %.2f | %.2fx faster than the shell pipeline | %d | %.0f | %d |\n", o, s/o, r/o, raw/1048576/o, rss}'
awk -v s="$s" -v r="$rows" -v raw="$shell_raw" -v rss="$(maxrss shell)" 'BEGIN{printf "| psql row_to_json \\| zstd -3 -T2, one file per table | %.2f | 1.00x | %d | %.0f | %d |\n", s, r/s, raw/1048576/s, rss}'
awk -v f="$f" -v o="$o" -v r="$rows" -v rss="$(maxrss floor)" 'BEGIN{printf "| floor: psql COPY TO STDOUT > /dev/null | %.2f | export = %.2fx the floor | %d | | %d |\n", f, o/f, r/f, rss}'
awk -v t="$rs" -v r="$rows" -v raw="$raw" -v kb="$rkb" 'BEGIN{printf "| chatstore archive restore | %.2f | | %d | %.0f | %d |\n", t, r/t, raw/1048576/t, kb/1024}'
awk -v a="$raw" -v b="$ours_z" -v c="$shell_raw" -v d="$shell_z" 'BEGIN{printf "\ncompression ratio: chatstore %.2fx (%d bytes), shell %.2fx (%d bytes)\n", a/b, b, c/d, d}'
echo "content check: $same"
