-- Receipt audit of a window, after every day of it: the orphan candidates that are not orphans.
-- A day's receipts that matched none of the day's messages were kept as orphans
-- (Queries/receipt_audit.sql, :'windowed'); a receipt filed up to a day away from its
-- message's own day is one of them, and that message's day audited it already. What was found
-- for such a receipt as a candidate (its rows carry the receipt's own sent_at, while every row
-- of an existing message carries the message's) is dropped. The candidates are few (the
-- receipts whose day differs from their message's, and the real orphans); the messages are
-- found by key, in two steps that Citus runs too (no join of a distributed and a temporary table).
--
-- Run by `chatstore jobs receipts` for a window. By hand: psql -f Queries/receipt_audit_orphans.sql
CREATE TEMP TABLE audit_orphan_keys ON COMMIT DROP AS
SELECT DISTINCT conversation_id, message_id FROM pg_temp.audit_found WHERE category = 'orphan_receipt';
ANALYZE pg_temp.audit_orphan_keys;

CREATE TEMP TABLE audit_orphan_messages ON COMMIT DROP AS
SELECT conversation_id, message_id, sent_at FROM chat.messages
WHERE (conversation_id, message_id) IN (SELECT conversation_id, message_id FROM pg_temp.audit_orphan_keys);

DELETE FROM pg_temp.audit_found f
USING pg_temp.audit_orphan_keys k
WHERE k.conversation_id = f.conversation_id AND k.message_id = f.message_id
  AND NOT EXISTS (SELECT 1 FROM pg_temp.audit_orphan_messages m
                  WHERE m.conversation_id = f.conversation_id AND m.message_id = f.message_id AND m.sent_at = f.sent_at)
  AND EXISTS (SELECT 1 FROM pg_temp.audit_orphan_messages m
              WHERE m.conversation_id = f.conversation_id AND m.message_id = f.message_id
                AND m.sent_at >= f.sent_at - interval '1 day' AND m.sent_at <= f.sent_at + interval '1 day');

DROP TABLE pg_temp.audit_orphan_keys, pg_temp.audit_orphan_messages;
