-- The messages the nightly receipt audit looks at: every message touched by a row written since
-- the previous audit's snapshot (:'prev', :'prev_xmin'), in commit order, whatever its
-- timestamps: the message's own row, any of its receipts (a receipt of an old message that
-- turned anomalous today), and for a membership row written since (a join or leave recorded
-- late) every message of the conversation from that join on, or from that leave on (a leave
-- changes who was a member only for what was sent after it). A receipt whose message does not
-- exist brings in its own key and no sender (an orphan). Then Queries/receipt_audit.sql audits them.
--
-- By hand: psql -v prev="'1234:1240:1236'" -v prev_xmin=1234 -f Queries/receipt_audit_changes.sql
CREATE TEMP TABLE audit_scope ON COMMIT DROP AS
SELECT DISTINCT ON (conversation_id, message_id) conversation_id, message_id, sent_at, sender_id
FROM (
    SELECT conversation_id, message_id, sent_at, sender_id FROM chat.messages
    WHERE change_xid >= :'prev_xmin'::bigint AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot)
    UNION ALL
    SELECT r.conversation_id, r.message_id, coalesce(y.sent_at, r.sent_at), y.sender_id
    -- (Receipts of a message whose own row was written since are left out here: the part above
    -- has that message already, so probing it again for each of them is wasted. That was a
    -- probe per new message of the day: 8.6 s for 471,302 messages at a mid-size service.)
    FROM (SELECT DISTINCT k.conversation_id, k.message_id, k.sent_at FROM chat.receipts k
          WHERE k.change_xid >= :'prev_xmin'::bigint AND NOT pg_visible_in_snapshot(k.change_xid::text::xid8, :'prev'::pg_snapshot)
            AND NOT EXISTS (SELECT 1 FROM chat.messages w
                            WHERE w.conversation_id = k.conversation_id AND w.message_id = k.message_id AND w.sent_at = k.sent_at
                              AND w.change_xid >= :'prev_xmin'::bigint
                              AND NOT pg_visible_in_snapshot(w.change_xid::text::xid8, :'prev'::pg_snapshot))) r
    LEFT JOIN LATERAL (
        SELECT y.sent_at, y.sender_id FROM chat.messages y
        WHERE y.conversation_id = r.conversation_id AND y.message_id = r.message_id
          AND y.sent_at >= r.sent_at - interval '1 day' AND y.sent_at <= r.sent_at + interval '1 day'
        LIMIT 1) y ON true
    UNION ALL
    SELECT m.conversation_id, m.message_id, m.sent_at, m.sender_id
    FROM (SELECT conversation_id, min(coalesce(left_at, joined_at)) AS joined_at FROM chat.members
          WHERE change_xid >= :'prev_xmin'::bigint AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot)
          GROUP BY conversation_id) mb
    JOIN chat.messages m ON m.conversation_id = mb.conversation_id AND m.sent_at >= mb.joined_at
) x
ORDER BY conversation_id, message_id, sender_id IS NULL, sent_at;
