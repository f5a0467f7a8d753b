-- Receipt audit of a window, after every day of it (Queries/receipt_audit.sql, :'windowed'):
-- the orphan candidates that are not orphans. Each day's receipts that matched none of the
-- day's messages were kept as orphans; a receipt filed up to a day away from its message's own
-- day is one of them (the day's statement read that day's receipts only). Those messages are
-- found by key (the candidates are few: such receipts and the real orphans), what was found for
-- them and for their candidate receipts is taken back, and they become pg_temp.audit_scope,
-- which the job then audits like the nightly's changes (the day either side read). Steps that
-- Citus runs too (no join of a distributed and a temporary table).
--
-- Run by `chatstore jobs receipts` for a window. By hand:
--   psql -v from="'2026-11-01'" -v to="'2026-12-01'" -f Queries/receipt_audit_orphans.sql
CREATE TEMP TABLE audit_orphan_keys ON COMMIT DROP AS
SELECT DISTINCT conversation_id, message_id, sent_at FROM pg_temp.audit_found WHERE category = 'orphan_receipt';
ANALYZE pg_temp.audit_orphan_keys;

-- The candidates' messages, and of those the ones a candidate is within a day of.
CREATE TEMP TABLE audit_skewed ON COMMIT DROP AS
SELECT conversation_id, message_id, sent_at, sender_id FROM chat.messages
WHERE (conversation_id, message_id) IN (SELECT conversation_id, message_id FROM pg_temp.audit_orphan_keys);
DELETE FROM pg_temp.audit_skewed m
WHERE NOT EXISTS (SELECT 1 FROM pg_temp.audit_orphan_keys k
                  WHERE k.conversation_id = m.conversation_id AND k.message_id = m.message_id
                    AND k.sent_at >= m.sent_at - interval '1 day' AND k.sent_at <= m.sent_at + interval '1 day');

-- What the days found for them (their own rows, and their receipts' as candidates) is taken back.
DELETE FROM pg_temp.audit_found f
USING pg_temp.audit_skewed m
WHERE f.conversation_id = m.conversation_id AND f.message_id = m.message_id
  AND f.sent_at >= m.sent_at - interval '1 day' AND f.sent_at <= m.sent_at + interval '1 day';

-- (A message outside the window [from, to) is not audited: its receipt was not an orphan.)
INSERT INTO pg_temp.audit_scope (conversation_id, message_id, sent_at, sender_id)
SELECT conversation_id, message_id, sent_at, sender_id FROM pg_temp.audit_skewed
WHERE sent_at >= :'from'::timestamptz AND sent_at < :'to'::timestamptz;

DROP TABLE pg_temp.audit_orphan_keys, pg_temp.audit_skewed;
