-- The messages the receipt audit looks at for a window given by hand (`jobs receipts --from
-- --to`) or on the first run (the whole history): every message sent in [from, to), and the
-- receipts filed in the window whose message does not exist (orphans, with no sender).
--
-- By hand: psql -v from="'2026-11-01'" -v to="'2026-12-01'" -f Queries/receipt_audit_window.sql
CREATE TEMP TABLE audit_scope ON COMMIT DROP AS
SELECT conversation_id, message_id, sent_at, sender_id FROM chat.messages
WHERE sent_at >= :'from'::timestamptz AND sent_at < :'to'::timestamptz
UNION ALL
SELECT DISTINCT ON (r.conversation_id, r.message_id) r.conversation_id, r.message_id, r.sent_at, NULL::bigint
FROM chat.receipts r
WHERE r.sent_at >= :'from'::timestamptz AND r.sent_at < :'to'::timestamptz
  AND NOT EXISTS (SELECT 1 FROM chat.messages y
                  WHERE y.conversation_id = r.conversation_id AND y.message_id = r.message_id
                    AND y.sent_at >= r.sent_at - interval '1 day' AND y.sent_at <= r.sent_at + interval '1 day')
ORDER BY 1, 2;
