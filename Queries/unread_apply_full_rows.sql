-- Full unread recompute (`--full`, `--repair`), one chunk's rows: chat.unread_messages with
-- sent_at in [lo, hi) becomes exactly pg_temp.unread_expected_messages (the chunk's unread
-- (member, message) rows, Queries/unread_full_chunk.sql). Only rows that differ are written, so
-- a full run over correct tables changes nothing. Each statement reads the chunk's unread rows
-- (the BRIN index on sent_at) and the chunk's expected rows: memory and temporary space are
-- those of the chunk, whatever the history. The job also runs it with an empty expected table
-- over the stretches between chunks, where no message is left (retired or deleted).
--
-- (The delete names its rows with IN (...) rather than a correlated NOT EXISTS on the temporary
-- table: Citus plans the subquery on its own, and PostgreSQL hashes it.)
--
-- By hand, after a chunk: psql -v lo="'2026-11-29'" -v hi="'2026-11-30'" -f Queries/unread_apply_full_rows.sql
DELETE FROM chat.unread_messages
WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz
  AND (conversation_id, user_id, message_id, sent_at) IN (
    SELECT u.conversation_id, u.user_id, u.message_id, u.sent_at FROM chat.unread_messages u
    LEFT JOIN pg_temp.unread_expected_messages e
      ON e.conversation_id = u.conversation_id AND e.user_id = u.user_id AND e.message_id = u.message_id AND e.sent_at = u.sent_at
    WHERE u.sent_at >= :'lo'::timestamptz AND u.sent_at < :'hi'::timestamptz AND e.conversation_id IS NULL);
-- In key order: the primary key's pages are then written in one pass.
INSERT INTO chat.unread_messages (conversation_id, user_id, message_id, sent_at)
SELECT conversation_id, user_id, message_id, sent_at FROM pg_temp.unread_expected_messages
ORDER BY conversation_id, user_id, message_id, sent_at
ON CONFLICT DO NOTHING;
