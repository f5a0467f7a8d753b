-- After Queries/receipt_audit.sql has filled pg_temp.audit_found for every day of the scope:
-- chat.receipt_anomalies gets what was found for the scope's messages.
--
-- By hand: psql -f Queries/receipt_audit_known.sql, then psql -v run_id=0 -f Queries/receipt_audit_apply.sql

-- What is known of these messages is replaced by what was found; an anomaly still open keeps
-- the run that found it first. In two steps whose joins involve temporary tables only (Citus
-- refuses a join of a distributed table with a local one, but takes `IN (SELECT ...)` of one):
-- the stored anomalies of the scope's messages, then those no longer found are deleted.
-- (pg_temp.audit_known: Queries/receipt_audit_known.sql, the stored anomalies of the scope's
-- messages, or for a window Queries/receipt_audit_known_window.sql, those sent in it.)

DELETE FROM chat.receipt_anomalies
WHERE (conversation_id, message_id, recipient_id, category) IN (
    SELECT k.conversation_id, k.message_id, k.recipient_id, k.category FROM pg_temp.audit_known k
    LEFT JOIN pg_temp.audit_found f
      ON f.conversation_id = k.conversation_id AND f.message_id = k.message_id
     AND f.recipient_id = k.recipient_id AND f.category = k.category
    WHERE f.category IS NULL);

INSERT INTO chat.receipt_anomalies AS a (conversation_id, message_id, recipient_id, category, row_count, sent_at, found_run_id)
SELECT conversation_id, message_id, recipient_id, category, count(*), min(sent_at), :'run_id'::bigint
FROM pg_temp.audit_found
GROUP BY conversation_id, message_id, recipient_id, category
ON CONFLICT (conversation_id, message_id, recipient_id, category) DO UPDATE
   SET row_count = EXCLUDED.row_count, sent_at = EXCLUDED.sent_at
 WHERE a.row_count <> EXCLUDED.row_count OR a.sent_at <> EXCLUDED.sent_at;
