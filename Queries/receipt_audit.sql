-- Receipt audit: receipts checked against their messages and membership, for messages sent in
-- [from, to). One row per category: the count and up to 5 sample ids
-- (conversation_id:message_id:recipient_id).
--
-- Categories:
--   read_without_delivered  read_at set, delivered_at NULL
--   read_before_delivered   read_at < delivered_at
--   delivered_before_sent   delivered_at < the message's sent_at
--   read_before_sent        read_at < the message's sent_at
--   status_behind_times     status lower than its times show (read_at set but status < 3, or
--                           delivered_at set but status < 2): a status that moved backwards
--   sender_receipt          a receipt for the message's own sender
--   non_member_receipt      a receipt for someone who was not a member when it was sent
--   duplicate_receipt       more than one row for (message, recipient): the extra rows
--   orphan_receipt          a receipt whose message does not exist
--   missing_receipt         a member at send time (not the sender) with no receipt row
--
-- By hand: psql -v from="'2026-11-01'" -v to="'2026-12-01'" -f Queries/receipt_audit.sql
WITH r AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.status, r.delivered_at, r.read_at,
           m.sent_at AS message_sent_at, m.sender_id,
           m.message_id IS NULL AS orphan,
           count(*) OVER (PARTITION BY r.conversation_id, r.message_id, r.recipient_id) AS copies,
           row_number() OVER (PARTITION BY r.conversation_id, r.message_id, r.recipient_id
                              ORDER BY (r.sent_at = m.sent_at) DESC, r.status DESC, r.sent_at) AS copy_rank
    FROM chat.receipts r
    LEFT JOIN chat.messages m
           ON m.conversation_id = r.conversation_id AND m.message_id = r.message_id
          AND m.sent_at >= :'from'::timestamptz - interval '1 day' AND m.sent_at < :'to'::timestamptz + interval '1 day'
    WHERE r.sent_at >= :'from'::timestamptz AND r.sent_at < :'to'::timestamptz
),
flags AS (
    SELECT r.*,
           (NOT orphan AND recipient_id <> sender_id AND NOT EXISTS (
               SELECT 1 FROM chat.members mb
               WHERE mb.conversation_id = r.conversation_id AND mb.user_id = r.recipient_id
                 AND mb.joined_at <= r.message_sent_at AND (mb.left_at IS NULL OR r.message_sent_at < mb.left_at))) AS non_member
    FROM r
),
found AS (
    SELECT 'read_without_delivered' AS category, conversation_id, message_id, recipient_id FROM flags WHERE read_at IS NOT NULL AND delivered_at IS NULL
    UNION ALL SELECT 'read_before_delivered', conversation_id, message_id, recipient_id FROM flags WHERE read_at < delivered_at
    UNION ALL SELECT 'delivered_before_sent', conversation_id, message_id, recipient_id FROM flags WHERE delivered_at < message_sent_at
    UNION ALL SELECT 'read_before_sent', conversation_id, message_id, recipient_id FROM flags WHERE read_at < message_sent_at
    UNION ALL SELECT 'status_behind_times', conversation_id, message_id, recipient_id FROM flags
              WHERE (read_at IS NOT NULL AND status < 3) OR (delivered_at IS NOT NULL AND status < 2)
    UNION ALL SELECT 'sender_receipt', conversation_id, message_id, recipient_id FROM flags WHERE recipient_id = sender_id
    UNION ALL SELECT 'non_member_receipt', conversation_id, message_id, recipient_id FROM flags WHERE non_member
    UNION ALL SELECT 'duplicate_receipt', conversation_id, message_id, recipient_id FROM flags WHERE copy_rank > 1
    UNION ALL SELECT 'orphan_receipt', conversation_id, message_id, recipient_id FROM flags WHERE orphan
    UNION ALL
    SELECT 'missing_receipt', m.conversation_id, m.message_id, mb.user_id
    FROM chat.messages m
    JOIN chat.members mb
      ON mb.conversation_id = m.conversation_id AND mb.user_id <> m.sender_id
     AND mb.joined_at <= m.sent_at AND (mb.left_at IS NULL OR m.sent_at < mb.left_at)
    WHERE m.sent_at >= :'from'::timestamptz AND m.sent_at < :'to'::timestamptz
      -- Any row for the pair counts, even one whose sent_at is off (within the same one-day
      -- margin as above); the bounds keep the probe to the window's partitions.
      AND NOT EXISTS (SELECT 1 FROM chat.receipts x
                      WHERE x.conversation_id = m.conversation_id AND x.message_id = m.message_id AND x.recipient_id = mb.user_id
                        AND x.sent_at >= :'from'::timestamptz - interval '1 day' AND x.sent_at < :'to'::timestamptz + interval '1 day')
)
SELECT c.category,
       count(f.category)::bigint AS found,
       coalesce((array_agg(f.conversation_id || ':' || f.message_id || ':' || f.recipient_id
                           ORDER BY f.conversation_id, f.message_id, f.recipient_id)
                 FILTER (WHERE f.category IS NOT NULL))[1:5], '{}') AS samples
FROM unnest(ARRAY['read_without_delivered', 'read_before_delivered', 'delivered_before_sent', 'read_before_sent',
                  'status_behind_times', 'sender_receipt', 'non_member_receipt', 'duplicate_receipt',
                  'orphan_receipt', 'missing_receipt']) AS c(category)
LEFT JOIN found f ON f.category = c.category
GROUP BY c.category
ORDER BY c.category
