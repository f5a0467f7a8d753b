-- Writes a full recompute's counts: pg_temp.unread_expected (from Queries/unread_full.sql,
-- summed over the chunks by Queries/unread_full_counts.sql) into chat.unread_counts. Only rows
-- that differ are written, so a full run over correct tables changes nothing. The unread rows
-- themselves were written chunk by chunk (Queries/unread_apply_full_rows.sql).
--
-- Run by `chatstore jobs unread --full | --repair`, after the chunks and the counts.
-- (The delete names its rows with IN (...) rather than a correlated NOT EXISTS on the temporary
-- table: Citus plans the subquery on its own, and PostgreSQL hashes it.)
DELETE FROM chat.unread_counts
WHERE (conversation_id, user_id) IN (
    SELECT u.conversation_id, u.user_id FROM chat.unread_counts u
    LEFT JOIN pg_temp.unread_expected e ON e.conversation_id = u.conversation_id AND e.user_id = u.user_id
    WHERE e.conversation_id IS NULL);

INSERT INTO chat.unread_counts AS u (conversation_id, user_id, unread, last_message_at, updated_at)
SELECT conversation_id, user_id, unread, last_message_at, now() FROM pg_temp.unread_expected
ON CONFLICT (conversation_id, user_id) DO UPDATE
   SET unread = EXCLUDED.unread, last_message_at = EXCLUDED.last_message_at, updated_at = EXCLUDED.updated_at
 WHERE u.unread IS DISTINCT FROM EXCLUDED.unread OR u.last_message_at IS DISTINCT FROM EXCLUDED.last_message_at;
