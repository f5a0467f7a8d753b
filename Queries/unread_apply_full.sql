-- Writes a full recompute into the tables: pg_temp.unread_expected_messages (from
-- Queries/unread_messages_full.sql) into chat.unread_messages, and pg_temp.unread_expected (from
-- Queries/unread_full.sql) into chat.unread_counts. Only rows that differ are written, so a
-- full run over correct tables changes nothing.
--
-- Run by `chatstore jobs unread --full | --repair`, after creating the two temp tables.

-- (Deletes name their rows with IN (...) rather than a correlated NOT EXISTS on the temporary
-- table: Citus plans the subquery on its own, and PostgreSQL hashes it.)
DELETE FROM chat.unread_messages
WHERE (conversation_id, user_id, message_id, sent_at) IN (
    SELECT u.conversation_id, u.user_id, u.message_id, u.sent_at FROM chat.unread_messages u
    LEFT JOIN pg_temp.unread_expected_messages e
      ON e.conversation_id = u.conversation_id AND e.user_id = u.user_id AND e.message_id = u.message_id AND e.sent_at = u.sent_at
    WHERE e.conversation_id IS NULL);

INSERT INTO chat.unread_messages (conversation_id, user_id, message_id, sent_at)
SELECT conversation_id, user_id, message_id, sent_at FROM pg_temp.unread_expected_messages
ON CONFLICT DO NOTHING;

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
