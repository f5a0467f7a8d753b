-- Receipt repair: fixes the categories of Queries/receipt_audit.sql that can be fixed safely,
-- for messages sent in [from, to), recording every change in chat.receipt_repairs with the old
-- and new row (as JSON) and the run id. Run in one transaction by `chatstore jobs receipts --repair`.
-- Repairs never change whether a receipt counts as read, so unread counts are not affected, and
-- updated_at is left alone. Orphan receipts are reported, never deleted (their message may be
-- archived).
--
-- By hand (in a transaction): psql -1 -v run_id=0 -v from="'2026-11-01'" -v to="'2026-12-01'" -f Queries/receipt_repair.sql

-- 1. Duplicates: keep one row per (message, recipient): the one filed under the message's
--    sent_at with the highest status; delete the others.
WITH ranked AS (
    SELECT r.tableoid AS toid, r.ctid AS rid, r.conversation_id, r.message_id, r.recipient_id, to_jsonb(r) AS old,
           row_number() OVER (PARTITION BY r.conversation_id, r.message_id, r.recipient_id
                              ORDER BY (r.sent_at = m.sent_at) DESC, r.status DESC, r.sent_at) AS copy_rank
    FROM chat.receipts r
    JOIN chat.messages m ON m.conversation_id = r.conversation_id AND m.message_id = r.message_id
     AND m.sent_at >= :'from'::timestamptz - interval '1 day' AND m.sent_at < :'to'::timestamptz + interval '1 day'
    WHERE r.sent_at >= :'from'::timestamptz AND r.sent_at < :'to'::timestamptz
), gone AS (
    DELETE FROM chat.receipts r USING ranked d
    WHERE d.copy_rank > 1 AND r.tableoid = d.toid AND r.ctid = d.rid AND r.sent_at >= :'from'::timestamptz AND r.sent_at < :'to'::timestamptz
      AND r.conversation_id = d.conversation_id AND r.message_id = d.message_id AND r.recipient_id = d.recipient_id
    RETURNING d.conversation_id, d.message_id, d.recipient_id, d.old
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, 'duplicate_receipt', 'delete', old, NULL FROM gone
ON CONFLICT DO NOTHING;

-- 2. Receipts for the sender, and for non-members at send time: delete.
WITH bad AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at, to_jsonb(r) AS old,
           CASE WHEN r.recipient_id = m.sender_id THEN 'sender_receipt' ELSE 'non_member_receipt' END AS category
    FROM chat.receipts r
    JOIN chat.messages m ON m.conversation_id = r.conversation_id AND m.message_id = r.message_id
     AND m.sent_at >= :'from'::timestamptz - interval '1 day' AND m.sent_at < :'to'::timestamptz + interval '1 day'
    WHERE r.sent_at >= :'from'::timestamptz AND r.sent_at < :'to'::timestamptz
      AND (r.recipient_id = m.sender_id OR NOT EXISTS (
          SELECT 1 FROM chat.members mb
          WHERE mb.conversation_id = r.conversation_id AND mb.user_id = r.recipient_id
            AND mb.joined_at <= m.sent_at AND (mb.left_at IS NULL OR m.sent_at < mb.left_at)))
), gone AS (
    DELETE FROM chat.receipts r USING bad b
    WHERE r.conversation_id = b.conversation_id AND r.message_id = b.message_id
      AND r.recipient_id = b.recipient_id AND r.sent_at = b.sent_at
    RETURNING b.conversation_id, b.message_id, b.recipient_id, b.category, b.old
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, category, 'delete', old, NULL FROM gone
ON CONFLICT DO NOTHING;

-- 3. Times before the message was sent: clamp them to sent_at.
WITH bad AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at, m.sent_at AS message_sent_at, to_jsonb(r) AS old,
           CASE WHEN r.delivered_at < m.sent_at THEN 'delivered_before_sent' ELSE 'read_before_sent' END AS category
    FROM chat.receipts r
    JOIN chat.messages m ON m.conversation_id = r.conversation_id AND m.message_id = r.message_id AND m.sent_at = r.sent_at
    WHERE r.sent_at >= :'from'::timestamptz AND r.sent_at < :'to'::timestamptz
      AND (r.delivered_at < m.sent_at OR r.read_at < m.sent_at)
), fixed AS (
    UPDATE chat.receipts r
       SET delivered_at = CASE WHEN r.delivered_at < b.message_sent_at THEN b.message_sent_at ELSE r.delivered_at END,
           read_at = CASE WHEN r.read_at < b.message_sent_at THEN b.message_sent_at ELSE r.read_at END
      FROM bad b
     WHERE r.conversation_id = b.conversation_id AND r.message_id = b.message_id
       AND r.recipient_id = b.recipient_id AND r.sent_at = b.sent_at
    RETURNING b.conversation_id, b.message_id, b.recipient_id, b.category, b.old, to_jsonb(r) AS new
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, category, 'update', old, new FROM fixed
ON CONFLICT DO NOTHING;

-- 4. Read without delivered, or read before delivered: a read proves delivery by then.
WITH bad AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at, to_jsonb(r) AS old,
           CASE WHEN r.delivered_at IS NULL THEN 'read_without_delivered' ELSE 'read_before_delivered' END AS category
    FROM chat.receipts r
    WHERE r.sent_at >= :'from'::timestamptz AND r.sent_at < :'to'::timestamptz
      AND r.read_at IS NOT NULL AND (r.delivered_at IS NULL OR r.read_at < r.delivered_at)
), fixed AS (
    UPDATE chat.receipts r SET delivered_at = r.read_at
      FROM bad b
     WHERE r.conversation_id = b.conversation_id AND r.message_id = b.message_id
       AND r.recipient_id = b.recipient_id AND r.sent_at = b.sent_at
    RETURNING b.conversation_id, b.message_id, b.recipient_id, b.category, b.old, to_jsonb(r) AS new
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, category, 'update', old, new FROM fixed
ON CONFLICT DO NOTHING;

-- 5. Status behind its times (moved backwards): move it forward to what the times show.
WITH bad AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at, to_jsonb(r) AS old,
           CASE WHEN r.read_at IS NOT NULL THEN 3 ELSE 2 END AS implied
    FROM chat.receipts r
    WHERE r.sent_at >= :'from'::timestamptz AND r.sent_at < :'to'::timestamptz
      AND ((r.read_at IS NOT NULL AND r.status < 3) OR (r.delivered_at IS NOT NULL AND r.status < 2))
), fixed AS (
    UPDATE chat.receipts r SET status = b.implied
      FROM bad b
     WHERE r.conversation_id = b.conversation_id AND r.message_id = b.message_id
       AND r.recipient_id = b.recipient_id AND r.sent_at = b.sent_at
    RETURNING b.conversation_id, b.message_id, b.recipient_id, b.old, to_jsonb(r) AS new
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, 'status_behind_times', 'update', old, new FROM fixed
ON CONFLICT DO NOTHING;

-- 6. Members at send time with no receipt: add one (sent, not delivered), so reconciliation
--    redelivers the message.
WITH missing AS (
    SELECT m.conversation_id, m.message_id, m.sent_at, mb.user_id
    FROM chat.messages m
    JOIN chat.members mb
      ON mb.conversation_id = m.conversation_id AND mb.user_id <> m.sender_id
     AND mb.joined_at <= m.sent_at AND (mb.left_at IS NULL OR m.sent_at < mb.left_at)
    WHERE m.sent_at >= :'from'::timestamptz AND m.sent_at < :'to'::timestamptz
      AND NOT EXISTS (SELECT 1 FROM chat.receipts x
                      WHERE x.conversation_id = m.conversation_id AND x.message_id = m.message_id AND x.recipient_id = mb.user_id)
), added AS (
    INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, updated_at)
    SELECT conversation_id, message_id, sent_at, user_id, 1, now() FROM missing
    ON CONFLICT DO NOTHING
    RETURNING conversation_id, message_id, recipient_id, to_jsonb(receipts) AS new
)
INSERT INTO chat.receipt_repairs (conversation_id, run_id, message_id, recipient_id, category, action, old_value, new_value)
SELECT conversation_id, :'run_id'::bigint, message_id, recipient_id, 'missing_receipt', 'insert', NULL, new FROM added
ON CONFLICT DO NOTHING;
