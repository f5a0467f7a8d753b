-- Full unread counts for a few (conversation, member) pairs (those in pg_temp.unread_pairs):
-- the members who joined or left since the last run. Same definition as unread_full.sql, but
-- driven by the pairs and their messages with index probes, so its cost follows the pairs, not
-- the history.
SELECT mb.conversation_id,
       mb.user_id,
       (count(m.message_id) FILTER (
           WHERE m.sender_id <> mb.user_id AND m.deleted_at IS NULL
             AND NOT EXISTS (
                 SELECT 1 FROM chat.receipts r
                 WHERE r.conversation_id = m.conversation_id AND r.message_id = m.message_id
                   AND r.recipient_id = mb.user_id AND (r.status = 3 OR r.read_at IS NOT NULL))))::integer AS unread,
       max(m.sent_at) AS last_message_at
FROM pg_temp.unread_pairs p
JOIN chat.members mb ON mb.conversation_id = p.conversation_id AND mb.user_id = p.user_id AND mb.left_at IS NULL
LEFT JOIN chat.messages m ON m.conversation_id = mb.conversation_id AND m.sent_at >= mb.joined_at
GROUP BY mb.conversation_id, mb.user_id
