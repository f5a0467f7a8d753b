-- The messages a receipt repair works on: every message with an open anomaly in
-- chat.receipt_anomalies (what the audits reported, however old), or those sent in [from, to)
-- when a window is given (`jobs receipts --repair --from --to`).
--
-- By hand: psql -v from="'-infinity'" -v to="'infinity'" -f Queries/receipt_repair_scope.sql
CREATE TEMP TABLE repair_scope ON COMMIT DROP AS
SELECT DISTINCT conversation_id, message_id, sent_at FROM chat.receipt_anomalies
WHERE sent_at >= :'from'::timestamptz AND sent_at < :'to'::timestamptz
