-- Unread verify (`--verify`, `--repair`), one chunk's rows: the pairs whose rows in
-- chat.unread_messages with sent_at in [lo, hi) differ from pg_temp.unread_expected_messages
-- (the chunk's unread (member, message) rows, Queries/unread_full_chunk.sql) go into
-- pg_temp.unread_rows_drift. Memory and temporary space are those of the chunk. The job also
-- runs it with an empty expected table over the stretches between chunks.
--
-- By hand, after a chunk: psql -v lo="'2026-11-29'" -v hi="'2026-11-30'" -f Queries/unread_verify_rows.sql
INSERT INTO pg_temp.unread_rows_drift (conversation_id, user_id)
SELECT DISTINCT coalesce(e.conversation_id, u.conversation_id), coalesce(e.user_id, u.user_id)
FROM pg_temp.unread_expected_messages e
FULL JOIN (SELECT conversation_id, user_id, message_id, sent_at FROM chat.unread_messages
           WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz) u
  ON u.conversation_id = e.conversation_id AND u.user_id = e.user_id AND u.message_id = e.message_id AND u.sent_at = e.sent_at
WHERE e.conversation_id IS NULL OR u.conversation_id IS NULL;
