-- Writes a full recompute into the tables: pg_temp.unread_expected_messages (from
-- Queries/unread_messages_full.sql) into chat.unread_messages, and pg_temp.unread_expected (from
-- Queries/unread_full.sql) into chat.unread_counts. Only rows that differ are written, so a
-- full run over correct tables changes nothing.
--
-- Run by `chatstore jobs unread --full | --repair`, after creating the two temp tables.

DELETE FROM chat.unread_messages u
WHERE NOT EXISTS (SELECT 1 FROM pg_temp.unread_expected_messages e
                  WHERE e.conversation_id = u.conversation_id AND e.user_id = u.user_id
                    AND e.message_id = u.message_id AND e.sent_at = u.sent_at);

INSERT INTO chat.unread_messages (conversation_id, user_id, message_id, sent_at)
SELECT conversation_id, user_id, message_id, sent_at FROM pg_temp.unread_expected_messages
ON CONFLICT DO NOTHING;

DELETE FROM chat.unread_counts u
WHERE NOT EXISTS (SELECT 1 FROM pg_temp.unread_expected e WHERE e.conversation_id = u.conversation_id AND e.user_id = u.user_id);

INSERT INTO chat.unread_counts AS u (conversation_id, user_id, unread, last_message_at, updated_at)
SELECT conversation_id, user_id, unread, last_message_at, now() FROM pg_temp.unread_expected
ON CONFLICT (conversation_id, user_id) DO UPDATE
   SET unread = EXCLUDED.unread, last_message_at = EXCLUDED.last_message_at, updated_at = now()
 WHERE u.unread IS DISTINCT FROM EXCLUDED.unread OR u.last_message_at IS DISTINCT FROM EXCLUDED.last_message_at;
