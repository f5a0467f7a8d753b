-- Set aside everything that happened from :t0 (the start of the new day) on, so that a nightly can run
-- "as of" :t0 and the day can then be replayed by replay-day.sql like an application would write it.
-- Used by nightly.sh and scale.sh. psql -v t0="'YYYY-MM-DD'".
CREATE TABLE bench_new_messages AS SELECT * FROM chat.messages WHERE sent_at >= :t0;
CREATE TABLE bench_new_receipts AS SELECT * FROM chat.receipts WHERE sent_at >= :t0;
CREATE TABLE bench_new_presence AS SELECT * FROM chat.presence_events WHERE occurred_at >= :t0;
CREATE TABLE bench_later_receipts AS SELECT * FROM chat.receipts WHERE sent_at < :t0 AND (delivered_at >= :t0 OR read_at >= :t0);
CREATE TABLE bench_later_leaves AS SELECT * FROM chat.members WHERE left_at >= :t0;
CREATE TABLE bench_later_deletes AS SELECT conversation_id, message_id, sent_at, deleted_at FROM chat.messages WHERE sent_at < :t0 AND deleted_at >= :t0;
-- The replay is a writer like the application: its rows get that transaction's change_xid.
ALTER TABLE bench_new_messages DROP COLUMN change_xid;
ALTER TABLE bench_new_receipts DROP COLUMN change_xid;
ALTER TABLE bench_new_presence DROP COLUMN change_xid;
UPDATE chat.messages SET deleted_at = NULL WHERE sent_at < :t0 AND deleted_at >= :t0;
DELETE FROM chat.receipts WHERE sent_at >= :t0;
DELETE FROM chat.messages WHERE sent_at >= :t0;
DELETE FROM chat.presence_events WHERE occurred_at >= :t0;
UPDATE chat.receipts SET delivered_at = CASE WHEN delivered_at >= :t0 THEN NULL ELSE delivered_at END,
                         read_at = CASE WHEN read_at >= :t0 THEN NULL ELSE read_at END
 WHERE sent_at < :t0 AND (delivered_at >= :t0 OR read_at >= :t0);
UPDATE chat.receipts SET status = CASE WHEN read_at IS NOT NULL THEN 3 WHEN delivered_at IS NOT NULL THEN 2 ELSE 1 END, updated_at = :t0
 WHERE sent_at < :t0 AND (message_id, recipient_id) IN (SELECT message_id, recipient_id FROM bench_later_receipts);
UPDATE chat.members SET left_at = NULL WHERE left_at >= :t0;
