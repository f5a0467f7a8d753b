-- Incremental unread counts: the read receipts of the items of one chunk of days ([lo, hi)) of
-- pg_temp.unread_changed_items: any receipt row of the member for the message, within a day of
-- its sent_at, that shows a read. The bounds are constants, so each statement reads only the
-- receipts partitions of those days and the day either side, whatever the history.
--
-- By hand, per chunk: psql -v lo="'2026-11-29'" -v hi="'2026-11-30'" -f Queries/unread_reads.sql
INSERT INTO pg_temp.unread_item_reads (conversation_id, user_id, message_id, sent_at)
SELECT DISTINCT i.conversation_id, i.user_id, i.message_id, i.sent_at
FROM pg_temp.unread_changed_items i
JOIN chat.receipts r
  ON r.conversation_id = i.conversation_id AND r.message_id = i.message_id AND r.recipient_id = i.user_id
 AND r.sent_at >= i.sent_at - interval '1 day' AND r.sent_at <= i.sent_at + interval '1 day'
WHERE i.sent_at >= :'lo'::timestamptz AND i.sent_at < :'hi'::timestamptz
  AND r.sent_at >= :'lo'::timestamptz - interval '1 day' AND r.sent_at <= :'hi'::timestamptz + interval '1 day'
  AND (r.status = 3 OR r.read_at IS NOT NULL)
