#!/usr/bin/env bash
# Measures storage per message (messages + receipts, heap + indexes) for a 2-member and a
# 256-member conversation, on the private cluster. Used for docs/schema.md.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release >/dev/null
bin=$PWD/.build/release/chatstore
dir=/tmp/chatstore-storage-$(id -u)
"$bin" local start --dir "$dir" --no-fsync >/dev/null
psql -qX "host=$dir dbname=postgres user=postgres" -c "DROP DATABASE IF EXISTS storage_cost" -c "CREATE DATABASE storage_cost"
url="host=$dir dbname=storage_cost user=postgres"
"$bin" migrate --quiet --database-url "$url"
"$bin" partitions ensure --quiet --database-url "$url" >/dev/null
psql -qX "$url" <<'SQL'
INSERT INTO chat.users (user_id, handle, display_name) SELECT g, 'u' || g, 'User ' || g FROM generate_series(1, 256) g;
INSERT INTO chat.conversations (conversation_id, kind, member_limit) VALUES (1, 'direct', 2), (2, 'group', 1024);
INSERT INTO chat.members (conversation_id, user_id, joined_at) SELECT 1, g, now() - interval '1 day' FROM generate_series(1, 2) g;
INSERT INTO chat.members (conversation_id, user_id, joined_at) SELECT 2, g, now() - interval '1 day' FROM generate_series(1, 256) g;
-- 20,000 messages of ~60 bytes of text in each conversation, all in today's partition.
INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, client_message_id)
SELECT c, g, date_trunc('day', now()) + g * interval '1 ms', 1 + g % (CASE c WHEN 1 THEN 2 ELSE 256 END), 'text',
       repeat('x', 60), md5(g::text)
FROM generate_series(1, 20000) g, (VALUES (1), (2)) v(c);
INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at)
SELECT m.conversation_id, m.message_id, m.sent_at, mb.user_id, 3, m.sent_at + interval '1 s', m.sent_at + interval '1 min'
FROM chat.messages m JOIN chat.members mb ON mb.conversation_id = m.conversation_id AND mb.user_id <> m.sender_id;
VACUUM ANALYZE chat.messages, chat.receipts;
SQL
psql -qX "$url" -At -F ' ' <<'SQL'
-- Split sizes per conversation in proportion to row counts (both share the partitions).
WITH sizes AS (
  SELECT (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'chat.messages'::regclass) AS msg_bytes,
         (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'chat.receipts'::regclass) AS rcpt_bytes,
         (SELECT count(*) FROM chat.messages) AS msgs, (SELECT count(*) FROM chat.receipts) AS rcpts
)
SELECT 'per_message_row_bytes', round(msg_bytes::numeric / msgs), 'per_receipt_row_bytes', round(rcpt_bytes::numeric / rcpts),
       'direct_total_per_message', round(msg_bytes::numeric / msgs + 1 * rcpt_bytes::numeric / rcpts),
       'group256_total_per_message', round(msg_bytes::numeric / msgs + 255 * rcpt_bytes::numeric / rcpts)
FROM sizes;
SQL
