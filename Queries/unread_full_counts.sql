-- Full unread recompute, last part: after every chunk (Queries/unread_full_chunk.sql), the count
-- and last message time per current member, as Queries/unread_full.sql defines them: what
-- chat.unread_counts must hold. A member with no message since their join has 0 and NULL.
CREATE TEMP TABLE unread_expected ON COMMIT DROP AS
SELECT c.conversation_id, c.user_id, coalesce(n.unread, 0)::integer AS unread, l.last_message_at
FROM pg_temp.unread_current c
LEFT JOIN (SELECT conversation_id, user_id, sum(unread) AS unread FROM pg_temp.unread_expected_counts GROUP BY 1, 2) n
  ON n.conversation_id = c.conversation_id AND n.user_id = c.user_id
LEFT JOIN (SELECT conversation_id, user_id, max(last_message_at) AS last_message_at FROM pg_temp.unread_expected_last GROUP BY 1, 2) l
  ON l.conversation_id = c.conversation_id AND l.user_id = c.user_id;
ANALYZE pg_temp.unread_expected;
