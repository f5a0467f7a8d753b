#!/usr/bin/env bash
# Benchmark: COPY FROM STDIN and COPY TO STDOUT + zstd, chatstore against psql/zstd, side by side.
# Usage: scripts/bench/foundation.sh [ROWS] [RUNS]     (default 1000000 rows, 3 runs; median reported)
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-1000000}
runs=${2:-3}
swift build -c release >/dev/null
bin=$PWD/.build/release/chatstore
dir=/tmp/chatstore-bench-$(id -u)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" local start --dir "$dir" --no-fsync >/dev/null
conn="host=$dir dbname=chatstore user=postgres"
export DATABASE_URL="$conn"
psql -qX "$conn" -c "DROP TABLE IF EXISTS bench_msgs; CREATE TABLE bench_msgs (conversation_id bigint, message_id bigint, sender_id bigint, sent_at timestamptz, kind text, body text)"
python3 scripts/bench/make-messages.py "$rows" > "$work/rows.copy"
size=$(stat -c %s "$work/rows.copy")

# measure LABEL CMD... → appends "seconds maxrss_kb" for each run to $work/LABEL
measure() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null
  cat "$work/t" >> "$work/$label"
}
median() { sort -n "$work/$1" | awk '{a[NR]=$1; m[NR]=$2} END {print a[int((NR+1)/2)]}'; }
maxrss() { awk 'BEGIN{m=0} {if ($2>m) m=$2} END {print int(m/1024)}' "$work/$1"; }

for r in $(seq "$runs"); do
  psql -qX "$conn" -c "TRUNCATE bench_msgs"; psql -qX "$conn" -c "CHECKPOINT"
  measure psql_in psql -qX "$conn" -c "\\copy bench_msgs from '$work/rows.copy'"
  psql -qX "$conn" -c "TRUNCATE bench_msgs"; psql -qX "$conn" -c "CHECKPOINT"
  measure cs_in "$bin" copy-in --quiet --table bench_msgs "$work/rows.copy"
done
for r in $(seq "$runs"); do
  measure psql_out bash -c "psql -qX '$conn' -c '\\copy bench_msgs to stdout' | zstd -3 -T2 -q -f -o '$work/psql.zst'"
  measure cs_out "$bin" copy-out --quiet --table bench_msgs --out "$work/cs.zst" --level 3
done
psql_zst=$(stat -c %s "$work/psql.zst"); cs_zst=$(stat -c %s "$work/cs.zst")
cmp <(zstd -dc "$work/psql.zst") <(zstd -dc "$work/cs.zst") && same=identical || same=DIFFERENT

pi=$(median psql_in); ci=$(median cs_in); po=$(median psql_out); co=$(median cs_out)
mb=$(awk -v s="$size" 'BEGIN{print s/1048576}')
printf "rows=%s text=%.1f MB runs=%s (median seconds)\n\n" "$rows" "$mb" "$runs"
printf "| benchmark | baseline s | chatstore s | speed ratio (baseline/chatstore) | chatstore rows/s | chatstore MB/s | peak RSS MB (baseline / chatstore) |\n|---|---|---|---|---|---|---|\n"
awk -v b="$pi" -v c="$ci" -v n="$rows" -v mb="$mb" -v rb="$(maxrss psql_in)" -v rc="$(maxrss cs_in)" 'BEGIN{printf "| COPY FROM STDIN vs psql \\\\copy from file | %.2f | %.2f | %.2fx | %d | %.0f | %d / %d |\n", b, c, b/c, n/c, mb/c, rb, rc}'
awk -v b="$po" -v c="$co" -v n="$rows" -v mb="$mb" -v rb="$(maxrss psql_out)" -v rc="$(maxrss cs_out)" 'BEGIN{printf "| COPY TO STDOUT + zstd -3 vs psql \\\\copy \\| zstd -3 -T2 | %.2f | %.2f | %.2fx | %d | %.0f | %d / %d |\n", b, c, b/c, n/c, mb/c, rb, rc}'
awk -v s="$size" -v p="$psql_zst" -v c="$cs_zst" 'BEGIN{printf "\ncompression ratio: psql|zstd %.2fx (%d bytes), chatstore %.2fx (%d bytes); decompressed content: '"$same"'\n", s/p, p, s/c, c}'
