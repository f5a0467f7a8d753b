-- Unread count and last message time per (conversation, current member), from scratch.
--
-- A message counts as unread for member U when: U is a current member (left_at IS NULL), the
-- message was sent at or after U joined, U did not send it, it is not deleted, and no receipt of
-- U for it shows a read (status = 3 or read_at set). A member who never opened the conversation
-- has every such message unread; a missing receipt row counts as unread; duplicate receipt rows
-- count once. last_message_at is the latest message since U joined (deleted ones included).
--
-- Run by `chatstore jobs unread --full | --verify`. By hand: psql -f Queries/unread_full.sql
SELECT mb.conversation_id,
       mb.user_id,
       (count(m.message_id) FILTER (WHERE m.sender_id <> mb.user_id AND m.deleted_at IS NULL AND rd.message_id IS NULL))::integer AS unread,
       max(m.sent_at) AS last_message_at
FROM chat.members mb
LEFT JOIN chat.messages m
       ON m.conversation_id = mb.conversation_id AND m.sent_at >= mb.joined_at
LEFT JOIN (SELECT DISTINCT conversation_id, message_id, recipient_id
             FROM chat.receipts
            WHERE status = 3 OR read_at IS NOT NULL) rd
       ON rd.conversation_id = m.conversation_id AND rd.message_id = m.message_id AND rd.recipient_id = mb.user_id
WHERE mb.left_at IS NULL
GROUP BY mb.conversation_id, mb.user_id
