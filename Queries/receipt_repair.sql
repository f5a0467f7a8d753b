-- Receipt repair: fixes the categories of Queries/receipt_audit.sql that can be fixed safely,
-- for the messages in pg_temp.repair_scope (conversation_id, message_id, sent_at): those with
-- open anomalies in chat.receipt_anomalies, i.e. what the audits reported, however old. Every
-- row deleted, changed or added is recorded in chat.receipt_repairs with its old and new value
-- (as JSON) and the run id. Rows changed get change_xid = DEFAULT, so the unread and last-seen
-- jobs that run next recompute what they touch. A repair never loses a read: merged duplicates
-- keep the most advanced status and the earliest delivered and read times of all their rows.
-- RETURNING gives the row's columns, made JSON outside it (the same object as to_jsonb(row)):
-- Citus refuses to_jsonb() in RETURNING and cannot return a shard's whole row.
-- Orphan receipts and statuses ahead of their times are reported, never changed (the message
-- may be archived; the missing time is unknown).
--
-- The repair goes one UTC day of the scope at a time ([lo, hi)), each statement bounded to the
-- receipts partitions of that day and the day either side.
--
-- By hand (in a transaction, after filling repair_scope), per day:
--   psql -1 -v run_id=0 -v xid=<SELECT pg_current_xact_id()> -v lo="'2026-11-29'" -v hi="'2026-11-30'" -f Queries/receipt_repair.sql

DROP TABLE IF EXISTS pg_temp.repair_duplicates;

-- 1. Duplicates: one row per (message, recipient) stays, the one filed under the message's
--    sent_at (else the earliest), with the highest status and the earliest times of the group.
CREATE TEMP TABLE repair_duplicates ON COMMIT DROP AS
SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at,
       row_number() OVER w AS copy_rank,
       max(r.status) OVER g AS status, min(r.delivered_at) OVER g AS delivered_at, min(r.read_at) OVER g AS read_at,
       count(*) OVER g AS copies
FROM (SELECT * FROM pg_temp.repair_scope WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz) s
JOIN chat.receipts r ON r.conversation_id = s.conversation_id AND r.message_id = s.message_id
 AND r.sent_at >= s.sent_at - interval '1 day' AND r.sent_at <= s.sent_at + interval '1 day'
 AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
WINDOW g AS (PARTITION BY r.conversation_id, r.message_id, r.recipient_id),
       w AS (PARTITION BY r.conversation_id, r.message_id, r.recipient_id ORDER BY (r.sent_at = s.sent_at) DESC, r.sent_at);

WITH kept AS (
    SELECT * FROM pg_temp.repair_duplicates WHERE copies > 1 AND copy_rank = 1
), old AS (
    SELECT k.*, to_jsonb(r) AS old FROM kept k
    JOIN chat.receipts r ON r.conversation_id = k.conversation_id AND r.message_id = k.message_id
     AND r.recipient_id = k.recipient_id AND r.sent_at = k.sent_at AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    WHERE r.status <> k.status OR r.delivered_at IS DISTINCT FROM k.delivered_at OR r.read_at IS DISTINCT FROM k.read_at
), fixed AS (
    UPDATE chat.receipts r
       SET status = o.status, delivered_at = o.delivered_at, read_at = o.read_at, change_xid = DEFAULT
      FROM old o
     WHERE r.conversation_id = o.conversation_id AND r.message_id = o.message_id
       AND r.recipient_id = o.recipient_id AND r.sent_at = o.sent_at AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    RETURNING o.conversation_id, o.message_id, o.recipient_id, o.sent_at, o.old, r.status AS n_status, r.delivered_at AS n_delivered_at, r.read_at AS n_read_at, r.updated_at AS n_updated_at, r.change_xid AS n_change_xid
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, receipt_sent_at, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, sent_at, 'duplicate_receipt', 'update', old, jsonb_build_object('conversation_id', conversation_id, 'message_id', message_id, 'sent_at', sent_at, 'recipient_id', recipient_id, 'status', n_status, 'delivered_at', n_delivered_at, 'read_at', n_read_at, 'updated_at', n_updated_at, 'change_xid', n_change_xid) FROM fixed;

WITH gone AS (
    DELETE FROM chat.receipts r USING pg_temp.repair_duplicates d
    WHERE d.copy_rank > 1 AND r.conversation_id = d.conversation_id AND r.message_id = d.message_id
      AND r.recipient_id = d.recipient_id AND r.sent_at = d.sent_at AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    RETURNING r.conversation_id, r.message_id, r.recipient_id, r.sent_at, r.status AS n_status, r.delivered_at AS n_delivered_at, r.read_at AS n_read_at, r.updated_at AS n_updated_at, r.change_xid AS n_change_xid
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, receipt_sent_at, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, sent_at, 'duplicate_receipt', 'delete', jsonb_build_object('conversation_id', conversation_id, 'message_id', message_id, 'sent_at', sent_at, 'recipient_id', recipient_id, 'status', n_status, 'delivered_at', n_delivered_at, 'read_at', n_read_at, 'updated_at', n_updated_at, 'change_xid', n_change_xid), NULL FROM gone;

-- 2. Receipts for the sender, and for non-members at send time: delete.
WITH bad AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at,
           CASE WHEN r.recipient_id = m.sender_id THEN 'sender_receipt' ELSE 'non_member_receipt' END AS category
    FROM (SELECT * FROM pg_temp.repair_scope WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz) s
    JOIN chat.messages m ON m.conversation_id = s.conversation_id AND m.message_id = s.message_id AND m.sent_at = s.sent_at
     AND m.sent_at >= :'lo'::timestamptz AND m.sent_at < :'hi'::timestamptz
    JOIN chat.receipts r ON r.conversation_id = s.conversation_id AND r.message_id = s.message_id
     AND r.sent_at >= s.sent_at - interval '1 day' AND r.sent_at <= s.sent_at + interval '1 day'
 AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    WHERE r.recipient_id = m.sender_id OR NOT EXISTS (
          SELECT 1 FROM chat.members mb
          WHERE mb.conversation_id = r.conversation_id AND mb.user_id = r.recipient_id
            AND mb.joined_at <= m.sent_at AND (mb.left_at IS NULL OR m.sent_at < mb.left_at))
), gone AS (
    DELETE FROM chat.receipts r USING bad b
    WHERE r.conversation_id = b.conversation_id AND r.message_id = b.message_id
      AND r.recipient_id = b.recipient_id AND r.sent_at = b.sent_at AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    RETURNING b.conversation_id, b.message_id, b.recipient_id, b.sent_at, b.category, r.status AS n_status, r.delivered_at AS n_delivered_at, r.read_at AS n_read_at, r.updated_at AS n_updated_at, r.change_xid AS n_change_xid
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, receipt_sent_at, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, sent_at, category, 'delete', jsonb_build_object('conversation_id', conversation_id, 'message_id', message_id, 'sent_at', sent_at, 'recipient_id', recipient_id, 'status', n_status, 'delivered_at', n_delivered_at, 'read_at', n_read_at, 'updated_at', n_updated_at, 'change_xid', n_change_xid), NULL FROM gone;

-- 3. Times before the message was sent: clamp them to sent_at.
WITH bad AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at, m.sent_at AS message_sent_at, to_jsonb(r) AS old,
           CASE WHEN r.delivered_at < m.sent_at THEN 'delivered_before_sent' ELSE 'read_before_sent' END AS category
    FROM (SELECT * FROM pg_temp.repair_scope WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz) s
    JOIN chat.messages m ON m.conversation_id = s.conversation_id AND m.message_id = s.message_id AND m.sent_at = s.sent_at
     AND m.sent_at >= :'lo'::timestamptz AND m.sent_at < :'hi'::timestamptz
    JOIN chat.receipts r ON r.conversation_id = s.conversation_id AND r.message_id = s.message_id
     AND r.sent_at >= s.sent_at - interval '1 day' AND r.sent_at <= s.sent_at + interval '1 day'
 AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    WHERE r.delivered_at < m.sent_at OR r.read_at < m.sent_at
), fixed AS (
    UPDATE chat.receipts r
       SET delivered_at = CASE WHEN r.delivered_at < b.message_sent_at THEN b.message_sent_at ELSE r.delivered_at END,
           read_at = CASE WHEN r.read_at < b.message_sent_at THEN b.message_sent_at ELSE r.read_at END,
           change_xid = DEFAULT
      FROM bad b
     WHERE r.conversation_id = b.conversation_id AND r.message_id = b.message_id
       AND r.recipient_id = b.recipient_id AND r.sent_at = b.sent_at AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    RETURNING b.conversation_id, b.message_id, b.recipient_id, b.sent_at, b.category, b.old, r.status AS n_status, r.delivered_at AS n_delivered_at, r.read_at AS n_read_at, r.updated_at AS n_updated_at, r.change_xid AS n_change_xid
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, receipt_sent_at, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, sent_at, category, 'update', old, jsonb_build_object('conversation_id', conversation_id, 'message_id', message_id, 'sent_at', sent_at, 'recipient_id', recipient_id, 'status', n_status, 'delivered_at', n_delivered_at, 'read_at', n_read_at, 'updated_at', n_updated_at, 'change_xid', n_change_xid) FROM fixed;

-- 4. Read without delivered, or read before delivered: a read proves delivery by then.
WITH bad AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at, to_jsonb(r) AS old,
           CASE WHEN r.delivered_at IS NULL THEN 'read_without_delivered' ELSE 'read_before_delivered' END AS category
    FROM (SELECT * FROM pg_temp.repair_scope WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz) s
    JOIN chat.receipts r ON r.conversation_id = s.conversation_id AND r.message_id = s.message_id
     AND r.sent_at >= s.sent_at - interval '1 day' AND r.sent_at <= s.sent_at + interval '1 day'
 AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    WHERE r.read_at IS NOT NULL AND (r.delivered_at IS NULL OR r.read_at < r.delivered_at)
), fixed AS (
    UPDATE chat.receipts r SET delivered_at = r.read_at, change_xid = DEFAULT
      FROM bad b
     WHERE r.conversation_id = b.conversation_id AND r.message_id = b.message_id
       AND r.recipient_id = b.recipient_id AND r.sent_at = b.sent_at AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    RETURNING b.conversation_id, b.message_id, b.recipient_id, b.sent_at, b.category, b.old, r.status AS n_status, r.delivered_at AS n_delivered_at, r.read_at AS n_read_at, r.updated_at AS n_updated_at, r.change_xid AS n_change_xid
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, receipt_sent_at, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, sent_at, category, 'update', old, jsonb_build_object('conversation_id', conversation_id, 'message_id', message_id, 'sent_at', sent_at, 'recipient_id', recipient_id, 'status', n_status, 'delivered_at', n_delivered_at, 'read_at', n_read_at, 'updated_at', n_updated_at, 'change_xid', n_change_xid) FROM fixed;

-- 5. Status behind its times (moved backwards): move it forward to what the times show.
WITH bad AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at, to_jsonb(r) AS old,
           CASE WHEN r.read_at IS NOT NULL THEN 3 ELSE 2 END AS implied
    FROM (SELECT * FROM pg_temp.repair_scope WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz) s
    JOIN chat.receipts r ON r.conversation_id = s.conversation_id AND r.message_id = s.message_id
     AND r.sent_at >= s.sent_at - interval '1 day' AND r.sent_at <= s.sent_at + interval '1 day'
 AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    WHERE (r.read_at IS NOT NULL AND r.status < 3) OR (r.delivered_at IS NOT NULL AND r.status < 2)
), fixed AS (
    UPDATE chat.receipts r SET status = b.implied, change_xid = DEFAULT
      FROM bad b
     WHERE r.conversation_id = b.conversation_id AND r.message_id = b.message_id
       AND r.recipient_id = b.recipient_id AND r.sent_at = b.sent_at AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
    RETURNING b.conversation_id, b.message_id, b.recipient_id, b.sent_at, b.old, r.status AS n_status, r.delivered_at AS n_delivered_at, r.read_at AS n_read_at, r.updated_at AS n_updated_at, r.change_xid AS n_change_xid
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, receipt_sent_at, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, sent_at, 'status_behind_times', 'update', old, jsonb_build_object('conversation_id', conversation_id, 'message_id', message_id, 'sent_at', sent_at, 'recipient_id', recipient_id, 'status', n_status, 'delivered_at', n_delivered_at, 'read_at', n_read_at, 'updated_at', n_updated_at, 'change_xid', n_change_xid) FROM fixed;

-- 6. Members at send time with no receipt: add one (sent, not delivered), so reconciliation
--    redelivers the message.
WITH missing AS (
    SELECT DISTINCT m.conversation_id, m.message_id, m.sent_at, mb.user_id
    FROM (SELECT * FROM pg_temp.repair_scope WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz) s
    JOIN chat.messages m ON m.conversation_id = s.conversation_id AND m.message_id = s.message_id AND m.sent_at = s.sent_at
     AND m.sent_at >= :'lo'::timestamptz AND m.sent_at < :'hi'::timestamptz
    JOIN chat.members mb
      ON mb.conversation_id = m.conversation_id AND mb.user_id <> m.sender_id
     AND mb.joined_at <= m.sent_at AND (mb.left_at IS NULL OR m.sent_at < mb.left_at)
    WHERE NOT EXISTS (SELECT 1 FROM chat.receipts x
                      WHERE x.conversation_id = m.conversation_id AND x.message_id = m.message_id AND x.recipient_id = mb.user_id
                        AND x.sent_at >= m.sent_at - interval '1 day' AND x.sent_at <= m.sent_at + interval '1 day'
                        AND x.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND x.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC')
), added AS (
    -- change_xid given, not left to its default: on Citus an INSERT ... SELECT pushed down to the
    -- shards would take the workers' transaction ids (docs/citus.md).
    INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, updated_at, change_xid)
    SELECT conversation_id, message_id, sent_at, user_id, 1, now(), :'xid'::bigint FROM missing
    ON CONFLICT DO NOTHING
    RETURNING conversation_id, message_id, recipient_id, sent_at, receipts.status AS n_status, receipts.delivered_at AS n_delivered_at, receipts.read_at AS n_read_at, receipts.updated_at AS n_updated_at, receipts.change_xid AS n_change_xid
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, receipt_sent_at, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, sent_at, 'missing_receipt', 'insert', NULL, jsonb_build_object('conversation_id', conversation_id, 'message_id', message_id, 'sent_at', sent_at, 'recipient_id', recipient_id, 'status', n_status, 'delivered_at', n_delivered_at, 'read_at', n_read_at, 'updated_at', n_updated_at, 'change_xid', n_change_xid) FROM added;
