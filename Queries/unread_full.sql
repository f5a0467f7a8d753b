-- Unread count and last message time per (conversation, current member), from scratch: what
-- chat.unread_counts must hold (docs/jobs.md, "Unread counts").
--
-- A member's current membership is their open interval (left_at IS NULL) that started last;
-- messages sent before it (an earlier membership, before a leave) never count. A message M
-- counts as unread for member U when it was sent at or after U's current join, U did not send
-- it, it is not deleted, and no receipt row of U for M (any copy whose sent_at is within a day
-- of M's, as the receipt audit matches them) shows a read (status 3 or read_at set). A member
-- who never opened the conversation has every such message unread. last_message_at is the
-- latest message since U's current join, deleted ones included, NULL when there is none.
--
-- Run by `chatstore jobs unread --full | --verify`. By hand: psql -f Queries/unread_full.sql
WITH cur AS (
    SELECT conversation_id, user_id, max(joined_at) AS joined_at
    FROM chat.members WHERE left_at IS NULL
    GROUP BY conversation_id, user_id
)
SELECT c.conversation_id,
       c.user_id,
       (count(m.message_id) FILTER (
           WHERE m.sender_id <> c.user_id AND m.deleted_at IS NULL
             AND NOT EXISTS (
                 SELECT 1 FROM chat.receipts r
                 WHERE r.conversation_id = m.conversation_id AND r.message_id = m.message_id AND r.recipient_id = c.user_id
                   AND r.sent_at >= m.sent_at - interval '1 day' AND r.sent_at <= m.sent_at + interval '1 day'
                   AND (r.status = 3 OR r.read_at IS NOT NULL))))::integer AS unread,
       max(m.sent_at) AS last_message_at
FROM cur c
LEFT JOIN chat.messages m ON m.conversation_id = c.conversation_id AND m.sent_at >= c.joined_at
GROUP BY c.conversation_id, c.user_id
