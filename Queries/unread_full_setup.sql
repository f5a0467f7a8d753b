-- Full unread recompute, first part: each current member's current join (the open membership
-- that started last; docs/jobs.md, "Unread counts") and the tables the chunks fill
-- (Queries/unread_full_chunk.sql); the job then walks the UTC days that hold messages in
-- chunks. Then Queries/unread_full_counts.sql.
--
-- By hand: psql -f Queries/unread_full_setup.sql, then the chunks, then the counts, in one transaction.

CREATE TEMP TABLE unread_current ON COMMIT DROP AS
SELECT conversation_id, user_id, max(joined_at) AS joined_at
FROM chat.members WHERE left_at IS NULL
GROUP BY conversation_id, user_id;
ANALYZE pg_temp.unread_current;

CREATE TEMP TABLE unread_expected_messages (conversation_id bigint, user_id bigint, message_id bigint, sent_at timestamptz) ON COMMIT DROP;
CREATE TEMP TABLE unread_expected_last (conversation_id bigint, user_id bigint, last_message_at timestamptz) ON COMMIT DROP;
-- Per chunk, each pair's number of unread messages in it (the chunk's rows are then written or
-- compared, and dropped before the next chunk), and the pairs whose rows differ (--verify).
CREATE TEMP TABLE unread_expected_counts (conversation_id bigint, user_id bigint, unread bigint) ON COMMIT DROP;
CREATE TEMP TABLE unread_rows_drift (conversation_id bigint, user_id bigint) ON COMMIT DROP;

