-- Receipt audit, before Queries/receipt_audit_apply.sql: what chat.receipt_anomalies knows of
-- the scope's messages (pg_temp.audit_scope: the nightly's changes, or the repaired messages).
-- IN (SELECT ...) of the temporary table, which Citus takes (it refuses a join with one).
--
-- By hand: psql -f Queries/receipt_audit_known.sql
CREATE TEMP TABLE audit_known ON COMMIT DROP AS
SELECT conversation_id, message_id, recipient_id, category FROM chat.receipt_anomalies
WHERE (conversation_id, message_id) IN (SELECT conversation_id, message_id FROM pg_temp.audit_scope);
