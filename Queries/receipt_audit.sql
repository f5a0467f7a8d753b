-- Receipt audit of the messages in pg_temp.audit_scope (conversation_id, message_id, sent_at,
-- sender_id; no sender for a receipt whose message does not exist):
-- their receipts checked against the message and membership. The nightly fills the scope with
-- what changed since its last run (Queries/receipt_audit_changes.sql), the first run and
-- `--from/--to` with every message sent in a window. What it finds for these messages replaces
-- what chat.receipt_anomalies knew of them, so that table holds every open anomaly.
--
-- Categories (docs/jobs.md, "Receipt audit"); each receipt row counts once per category:
--   read_without_delivered  read_at set, delivered_at NULL
--   read_before_delivered   read_at < delivered_at
--   delivered_before_sent   delivered_at < the message's sent_at
--   read_before_sent        read_at < the message's sent_at
--   status_behind_times     status lower than its times show (read_at set but status < 3, or
--                           delivered_at set but status < 2): a status that moved backwards
--   status_ahead_of_times   status higher than its times show (status 3 with read_at NULL, or
--                           status 2 with delivered_at NULL): a read or delivery with no time
--   sender_receipt          a receipt for the message's own sender
--   non_member_receipt      a receipt for someone who was not a member when the message was
--                           sent (membership at send time: a member who reads history from
--                           before they joined is flagged too)
--   duplicate_receipt       more than one row for (message, recipient): each extra row counts
--   orphan_receipt          a receipt whose message does not exist
--   missing_receipt         a member at send time (not the sender) with no receipt row
-- A receipt belongs to a message when their conversation and message ids match and the
-- receipt's sent_at is within a day of the message's.
--
-- The work goes one UTC day of the scope at a time ([lo, hi)), so each statement reads the
-- receipts partitions of that day and the day either side, whatever the history: its memory and
-- temporary space are those of three partitions. Then Queries/receipt_audit_apply.sql.
--
-- By hand, after filling audit_scope and creating audit_found, per day:
--   psql -v lo="'2026-11-29'" -v hi="'2026-11-30'" -f Queries/receipt_audit.sql

INSERT INTO pg_temp.audit_found (category, conversation_id, message_id, recipient_id, sent_at)
WITH s AS (
    SELECT * FROM pg_temp.audit_scope WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz
),
r AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at, r.status, r.delivered_at, r.read_at,
           CASE WHEN s.sender_id IS NOT NULL THEN s.sent_at END AS message_sent_at, s.sender_id,
           s.sender_id IS NULL AS orphan,
           row_number() OVER (PARTITION BY r.conversation_id, r.message_id, r.recipient_id
                              ORDER BY (r.sent_at = s.sent_at) DESC, r.status DESC, r.sent_at) AS copy_rank
    FROM s
    JOIN chat.receipts r
      ON r.conversation_id = s.conversation_id AND r.message_id = s.message_id
     AND r.sent_at >= s.sent_at - interval '1 day' AND r.sent_at <= s.sent_at + interval '1 day'
    -- The chunk's bounds, as constants: only the partitions of these days and the one either side.
    WHERE r.sent_at >= :'lo'::timestamptz - interval '1 day' AND r.sent_at <= :'hi'::timestamptz + interval '1 day'
),
flags AS (
    SELECT r.*,
           (NOT orphan AND recipient_id <> sender_id AND NOT EXISTS (
               SELECT 1 FROM chat.members mb
               WHERE mb.conversation_id = r.conversation_id AND mb.user_id = r.recipient_id
                 AND mb.joined_at <= r.message_sent_at AND (mb.left_at IS NULL OR r.message_sent_at < mb.left_at))) AS non_member
    FROM r
)
SELECT 'read_without_delivered' AS category, conversation_id, message_id, recipient_id, coalesce(message_sent_at, sent_at) AS sent_at FROM flags WHERE read_at IS NOT NULL AND delivered_at IS NULL
UNION ALL SELECT 'read_before_delivered', conversation_id, message_id, recipient_id, message_sent_at FROM flags WHERE read_at < delivered_at
UNION ALL SELECT 'delivered_before_sent', conversation_id, message_id, recipient_id, message_sent_at FROM flags WHERE delivered_at < message_sent_at
UNION ALL SELECT 'read_before_sent', conversation_id, message_id, recipient_id, message_sent_at FROM flags WHERE read_at < message_sent_at
UNION ALL SELECT 'status_behind_times', conversation_id, message_id, recipient_id, coalesce(message_sent_at, sent_at) FROM flags
          WHERE (read_at IS NOT NULL AND status < 3) OR (delivered_at IS NOT NULL AND status < 2)
UNION ALL SELECT 'status_ahead_of_times', conversation_id, message_id, recipient_id, coalesce(message_sent_at, sent_at) FROM flags
          WHERE (status = 3 AND read_at IS NULL) OR (status = 2 AND delivered_at IS NULL)
UNION ALL SELECT 'sender_receipt', conversation_id, message_id, recipient_id, message_sent_at FROM flags WHERE recipient_id = sender_id
UNION ALL SELECT 'non_member_receipt', conversation_id, message_id, recipient_id, message_sent_at FROM flags WHERE non_member
UNION ALL SELECT 'duplicate_receipt', conversation_id, message_id, recipient_id, coalesce(message_sent_at, sent_at) FROM flags WHERE copy_rank > 1
UNION ALL SELECT 'orphan_receipt', conversation_id, message_id, recipient_id, sent_at FROM flags WHERE orphan
UNION ALL
SELECT 'missing_receipt', m.conversation_id, m.message_id, mb.user_id, m.sent_at
FROM s m
JOIN chat.members mb
  ON mb.conversation_id = m.conversation_id AND mb.user_id <> m.sender_id
 AND mb.joined_at <= m.sent_at AND (mb.left_at IS NULL OR m.sent_at < mb.left_at)
WHERE NOT EXISTS (SELECT 1 FROM chat.receipts x
                  WHERE x.conversation_id = m.conversation_id AND x.message_id = m.message_id AND x.recipient_id = mb.user_id
                    AND x.sent_at >= m.sent_at - interval '1 day' AND x.sent_at <= m.sent_at + interval '1 day'
                    AND x.sent_at >= :'lo'::timestamptz - interval '1 day' AND x.sent_at <= :'hi'::timestamptz + interval '1 day')
GROUP BY m.conversation_id, m.message_id, m.sent_at, mb.user_id;
