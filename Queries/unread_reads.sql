-- Incremental unread counts: the read receipts of the messages of one chunk of days ([lo, hi)) of
-- pg_temp.unread_changed_messages (every item's message is there): any receipt row for the
-- message, within a day of its sent_at, that shows a read, per recipient. The bounds are
-- constants, so each statement reads only the receipts partitions of those days and the day
-- either side, whatever the history. A busy day hashes its messages (not the items, one per
-- member) against those partitions; a chunk of few messages (:'by_key') probes each message's
-- receipts by key instead (LATERAL ... OFFSET 0). The branch not taken is never executed.
--
-- By hand, per chunk: psql -v lo="'2026-11-29'" -v hi="'2026-11-30'" -v by_key=false -f Queries/unread_reads.sql
INSERT INTO pg_temp.unread_item_reads (conversation_id, user_id, message_id, sent_at)
SELECT DISTINCT conversation_id, user_id, message_id, sent_at FROM (
    SELECT m.conversation_id, r.recipient_id AS user_id, m.message_id, m.sent_at
    FROM pg_temp.unread_changed_messages m
    JOIN chat.receipts r
      ON r.conversation_id = m.conversation_id AND r.message_id = m.message_id
     AND r.sent_at >= m.sent_at - interval '1 day' AND r.sent_at <= m.sent_at + interval '1 day'
    WHERE m.sent_at >= :'lo'::timestamptz AND m.sent_at < :'hi'::timestamptz
      AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
      AND (r.status = 3 OR r.read_at IS NOT NULL)
      AND NOT :'by_key'::boolean
    UNION ALL
    SELECT m.conversation_id, r.recipient_id, m.message_id, m.sent_at
    FROM pg_temp.unread_changed_messages m
    CROSS JOIN LATERAL (
        SELECT r.recipient_id FROM chat.receipts r
        WHERE r.conversation_id = m.conversation_id AND r.message_id = m.message_id
          AND r.sent_at >= m.sent_at - interval '1 day' AND r.sent_at <= m.sent_at + interval '1 day'
          AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
          AND (r.status = 3 OR r.read_at IS NOT NULL)
        OFFSET 0) r
    WHERE m.sent_at >= :'lo'::timestamptz AND m.sent_at < :'hi'::timestamptz
      AND :'by_key'::boolean
) x;
