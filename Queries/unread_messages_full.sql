-- The unread messages themselves, from scratch: one row per (conversation, current member,
-- message) that Queries/unread_full.sql counts (same definition). chat.unread_messages holds
-- exactly these rows after every run.
--
-- By hand: psql -f Queries/unread_messages_full.sql
WITH cur AS (
    SELECT conversation_id, user_id, max(joined_at) AS joined_at
    FROM chat.members WHERE left_at IS NULL
    GROUP BY conversation_id, user_id
)
SELECT m.conversation_id, c.user_id, m.message_id, m.sent_at
FROM cur c
JOIN chat.messages m ON m.conversation_id = c.conversation_id AND m.sent_at >= c.joined_at
WHERE m.sender_id <> c.user_id AND m.deleted_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM chat.receipts r
      WHERE r.conversation_id = m.conversation_id AND r.message_id = m.message_id AND r.recipient_id = c.user_id
        AND r.sent_at >= m.sent_at - interval '1 day' AND r.sent_at <= m.sent_at + interval '1 day'
        AND (r.status = 3 OR r.read_at IS NOT NULL))
