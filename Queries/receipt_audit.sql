-- Receipt audit of the messages in pg_temp.audit_scope (conversation_id, message_id, sent_at,
-- sender_id; no sender for a receipt whose message does not exist):
-- their receipts checked against the message and membership. The nightly fills the scope with
-- what changed since its last run (Queries/receipt_audit_changes.sql), the first run and
-- `--from/--to` with every message sent in a window. What it finds for these messages replaces
-- what chat.receipt_anomalies knew of them, so that table holds every open anomaly.
--
-- Categories (docs/jobs.md, "Receipt audit"); each receipt row counts once per category:
--   read_without_delivered  read_at set, delivered_at NULL
--   read_before_delivered   read_at < delivered_at
--   delivered_before_sent   delivered_at < the message's sent_at
--   read_before_sent        read_at < the message's sent_at
--   status_behind_times     status lower than its times show (read_at set but status < 3, or
--                           delivered_at set but status < 2): a status that moved backwards
--   status_ahead_of_times   status higher than its times show (status 3 with read_at NULL, or
--                           status 2 with delivered_at NULL): a read or delivery with no time
--   sender_receipt          a receipt for the message's own sender
--   non_member_receipt      a receipt for someone who was not a member when the message was
--                           sent (membership at send time: a member who reads history from
--                           before they joined is flagged too)
--   duplicate_receipt       more than one row for (message, recipient): each extra row counts
--   orphan_receipt          a receipt whose message does not exist
--   missing_receipt         a member at send time (not the sender) with no receipt row
-- A receipt belongs to a message when their conversation and message ids match and the
-- receipt's sent_at is within a day of the message's.
--
-- The work goes one UTC day of the scope at a time ([lo, hi)), so each statement reads the
-- receipts partitions of that day and the day either side, whatever the history: its memory and
-- temporary space are those of three partitions. Then Queries/receipt_audit_apply.sql.
--
-- One pass: the scope's receipts (r) are full-joined with who was a member at send time (e), so
-- a receipt with no member behind it is non_member_receipt and a member with no receipt is
-- missing_receipt; each joined row then yields its categories (no rescans).
--
-- A window (the first run, `--from/--to`; :'windowed' true) has no scope table: each day's
-- messages are read from chat.messages and joined with the receipts filed on the same day
-- only (one partition, not three), and the day's receipts that match none of them are kept
-- as orphan candidates (no sender). A receipt filed up to a day away from its message's day
-- is such a candidate; Queries/receipt_audit_orphans.sql then takes back what was found for
-- those few messages and their candidates, and they are audited again as a scope (the day
-- either side read, as for the nightly). So a month is never copied into a temporary table
-- and rescanned per day (at 27.5M messages: 200 s to build, 1.5 GB read per day), and a
-- day's statement reads a third of the receipts (34.5 s -> 28.4 s a day at 1M messages/day).
--
-- By hand, after filling audit_scope and creating audit_found, per day:
--   psql -v lo="'2026-11-29'" -v hi="'2026-11-30'" -v by_key=false -v windowed=false -f Queries/receipt_audit.sql

INSERT INTO pg_temp.audit_found (category, conversation_id, message_id, recipient_id, sent_at)
WITH s AS MATERIALIZED (
    SELECT conversation_id, message_id, sent_at, sender_id FROM pg_temp.audit_scope
    WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz AND NOT :'windowed'::boolean
    UNION ALL
    SELECT conversation_id, message_id, sent_at, sender_id FROM chat.messages
    WHERE sent_at >= :'lo'::timestamptz AND sent_at < :'hi'::timestamptz AND :'windowed'::boolean
),
-- The scope's receipts: the ones within a day of their message's sent_at. :'by_key' (a chunk of
-- few messages) probes them by key, message by message (LATERAL ... OFFSET 0), in the
-- partitions of its day and the day either side; otherwise (a busy day) they are found by
-- hashing the chunk's messages against the chunk's partitions. The branch not taken is never
-- executed. (Left to itself, the planner hashed 931,435 receipts for 610 messages at 70 days.)
-- In a window, the chunk's own receipts that match no message of it come along (orphan
-- candidates, no sender); otherwise the outer join is an inner one (the planner reduces it).
rr AS (
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at, r.status, r.delivered_at, r.read_at,
           s.sent_at AS message_sent_at, s.sender_id
    FROM chat.receipts r
    LEFT JOIN s
      ON r.conversation_id = s.conversation_id AND r.message_id = s.message_id
     AND r.sent_at >= s.sent_at - interval '1 day' AND r.sent_at <= s.sent_at + interval '1 day'
    -- The chunk's bounds, as constants: only the partitions of these days and the one either
    -- side (in a window, of these days alone).
    WHERE r.sent_at >= CASE WHEN :'windowed'::boolean THEN :'lo'::timestamptz
                            ELSE (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' END
      AND r.sent_at < CASE WHEN :'windowed'::boolean THEN :'hi'::timestamptz
                           ELSE (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC' END
      AND NOT :'by_key'::boolean
      AND (s.conversation_id IS NOT NULL
           OR (:'windowed'::boolean AND r.sent_at >= :'lo'::timestamptz AND r.sent_at < :'hi'::timestamptz))
    UNION ALL
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at, r.status, r.delivered_at, r.read_at,
           s.sent_at, s.sender_id
    FROM s
    CROSS JOIN LATERAL (
        SELECT r.* FROM chat.receipts r
        WHERE r.conversation_id = s.conversation_id AND r.message_id = s.message_id
          AND r.sent_at >= s.sent_at - interval '1 day' AND r.sent_at <= s.sent_at + interval '1 day'
          AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
        OFFSET 0) r
    WHERE :'by_key'::boolean
),
r AS (
    SELECT rr.*,
           row_number() OVER (PARTITION BY conversation_id, message_id, recipient_id
                              ORDER BY (sent_at = message_sent_at) DESC, status DESC, sent_at) AS copy_rank
    FROM rr
),
e AS (
    SELECT DISTINCT m.conversation_id, m.message_id, mb.user_id AS recipient_id, m.sent_at
    FROM s m
    JOIN chat.members mb
      ON mb.conversation_id = m.conversation_id AND mb.user_id <> m.sender_id
     AND mb.joined_at <= m.sent_at AND (mb.left_at IS NULL OR m.sent_at < mb.left_at)
),
j AS (
    SELECT coalesce(r.conversation_id, e.conversation_id) AS conversation_id,
           coalesce(r.message_id, e.message_id) AS message_id,
           coalesce(r.recipient_id, e.recipient_id) AS recipient_id,
           coalesce(e.sent_at, r.message_sent_at, r.sent_at) AS sent_at,
           r.conversation_id IS NULL AS missing,
           r.conversation_id IS NOT NULL AND e.conversation_id IS NULL AND r.sender_id IS NOT NULL
               AND r.recipient_id <> r.sender_id AS non_member,
           r.sender_id IS NULL AND r.conversation_id IS NOT NULL AS orphan,
           r.recipient_id = r.sender_id AS own,
           r.status, r.delivered_at, r.read_at, r.message_sent_at, r.copy_rank
    FROM r
    FULL JOIN e
      ON e.conversation_id = r.conversation_id AND e.message_id = r.message_id AND e.recipient_id = r.recipient_id
),
-- Each row's categories as one array (a CASE per category is cheap; a lateral row per category
-- and receipt was most of the statement's time), unnested only for the few rows that have any.
c AS (
    SELECT conversation_id, message_id, recipient_id, sent_at, array_remove(ARRAY[
        CASE WHEN read_at IS NOT NULL AND delivered_at IS NULL THEN 'read_without_delivered' END,
        CASE WHEN read_at < delivered_at THEN 'read_before_delivered' END,
        CASE WHEN delivered_at < message_sent_at THEN 'delivered_before_sent' END,
        CASE WHEN read_at < message_sent_at THEN 'read_before_sent' END,
        CASE WHEN (read_at IS NOT NULL AND status < 3) OR (delivered_at IS NOT NULL AND status < 2) THEN 'status_behind_times' END,
        CASE WHEN (status = 3 AND read_at IS NULL) OR (status = 2 AND delivered_at IS NULL) THEN 'status_ahead_of_times' END,
        CASE WHEN own THEN 'sender_receipt' END,
        CASE WHEN non_member THEN 'non_member_receipt' END,
        CASE WHEN copy_rank > 1 THEN 'duplicate_receipt' END,
        CASE WHEN orphan THEN 'orphan_receipt' END,
        CASE WHEN missing THEN 'missing_receipt' END], NULL) AS categories
    FROM j
    -- The same conditions as one OR (short-circuited): the array is built only for the few rows
    -- that have a category (building it for every receipt was a third of the statement).
    WHERE (read_at IS NOT NULL AND delivered_at IS NULL) OR read_at < delivered_at
       OR delivered_at < message_sent_at OR read_at < message_sent_at
       OR (read_at IS NOT NULL AND status < 3) OR (delivered_at IS NOT NULL AND status < 2)
       OR (status = 3 AND read_at IS NULL) OR (status = 2 AND delivered_at IS NULL)
       OR own OR non_member OR copy_rank > 1 OR orphan OR missing
)
SELECT unnest(categories), conversation_id, message_id, recipient_id, sent_at
FROM c
WHERE cardinality(categories) > 0;

