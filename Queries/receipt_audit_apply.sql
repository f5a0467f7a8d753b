-- After Queries/receipt_audit.sql has filled pg_temp.audit_found for every day of the scope:
-- chat.receipt_anomalies gets what was found for the scope's messages.
--
-- By hand: psql -v run_id=0 -f Queries/receipt_audit_apply.sql

-- What is known of these messages is replaced by what was found; an anomaly still open keeps
-- the run that found it first.
DELETE FROM chat.receipt_anomalies a
USING pg_temp.audit_scope s
WHERE a.conversation_id = s.conversation_id AND a.message_id = s.message_id
  AND NOT EXISTS (SELECT 1 FROM pg_temp.audit_found f
                  WHERE f.conversation_id = a.conversation_id AND f.message_id = a.message_id
                    AND f.recipient_id = a.recipient_id AND f.category = a.category);

INSERT INTO chat.receipt_anomalies AS a (conversation_id, message_id, recipient_id, category, row_count, sent_at, found_run_id)
SELECT conversation_id, message_id, recipient_id, category, count(*), min(sent_at), :'run_id'::bigint
FROM pg_temp.audit_found
GROUP BY conversation_id, message_id, recipient_id, category
ON CONFLICT (conversation_id, message_id, recipient_id, category) DO UPDATE
   SET row_count = EXCLUDED.row_count, sent_at = EXCLUDED.sent_at
 WHERE a.row_count <> EXCLUDED.row_count OR a.sent_at <> EXCLUDED.sent_at;
