-- Receipt audit of a window [from, to) (the first run, `jobs receipts --from --to`), before
-- Queries/receipt_audit_apply.sql: what chat.receipt_anomalies knows of the messages sent in
-- it and of the orphan receipts filed in it (an anomaly's sent_at is its message's, or an
-- orphan's own): exactly what the audit of the window looked at.
--
-- By hand: psql -v from="'2026-11-01'" -v to="'2026-12-01'" -f Queries/receipt_audit_known_window.sql
CREATE TEMP TABLE audit_known ON COMMIT DROP AS
SELECT conversation_id, message_id, recipient_id, category FROM chat.receipt_anomalies
WHERE sent_at >= :'from'::timestamptz AND sent_at < :'to'::timestamptz;
