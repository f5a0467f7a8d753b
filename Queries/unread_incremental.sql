-- Changes to unread counts since the last run, per (conversation, current member).
--
-- Variables: prev (the last run's watermark), now (this run's watermark). The cost follows the
-- night's changes, not the history: new messages are read from the partitions of (prev, now];
-- reads and deletions since prev, of messages of any age, are found through the BRIN indexes on
-- receipts.updated_at and messages.deleted_at (migration 0004), a few index pages per partition,
-- and each such row is then probed by its full key. Members who joined or left since prev are
-- recomputed in full separately (Queries/unread_pairs.sql).
--
-- plus:  messages sent in (prev, now] that are unread now
-- minus: messages sent up to prev that were unread at prev and were read (receipt updated after
--        prev) or deleted since
--
-- By hand: psql -v prev="'2026-11-28'" -v now="'2026-11-29'" -f Queries/unread_incremental.sql
WITH new_messages AS (
    SELECT mb.conversation_id, mb.user_id,
           count(*) FILTER (
               WHERE m.sender_id <> mb.user_id AND m.deleted_at IS NULL
                 AND NOT EXISTS (
                     SELECT 1 FROM chat.receipts r
                     WHERE r.conversation_id = m.conversation_id AND r.message_id = m.message_id
                       AND r.sent_at = m.sent_at AND r.recipient_id = mb.user_id
                       AND r.sent_at > :'prev'::timestamptz AND r.sent_at <= :'now'::timestamptz
                       AND (r.status = 3 OR r.read_at IS NOT NULL))) AS plus,
           max(m.sent_at) AS last_message_at
    FROM chat.messages m
    JOIN chat.members mb
      ON mb.conversation_id = m.conversation_id AND mb.left_at IS NULL AND mb.joined_at <= m.sent_at
    WHERE m.sent_at > :'prev'::timestamptz AND m.sent_at <= :'now'::timestamptz
    GROUP BY mb.conversation_id, mb.user_id
),
changed AS (
    SELECT r.conversation_id, r.message_id, r.sent_at, r.recipient_id AS user_id
    FROM chat.receipts r
    WHERE r.sent_at <= :'prev'::timestamptz
      AND r.updated_at > :'prev'::timestamptz AND (r.status = 3 OR r.read_at IS NOT NULL)
    UNION
    SELECT m.conversation_id, m.message_id, m.sent_at, mb.user_id
    FROM chat.messages m
    JOIN chat.members mb ON mb.conversation_id = m.conversation_id AND mb.left_at IS NULL
    WHERE m.sent_at <= :'prev'::timestamptz
      AND m.deleted_at > :'prev'::timestamptz AND m.deleted_at <= :'now'::timestamptz
),
gone AS (
    SELECT c.conversation_id, c.user_id, count(*) AS minus
    FROM changed c
    -- LATERAL ... OFFSET 0: one index probe by the full key in one partition per changed row.
    CROSS JOIN LATERAL (
        SELECT y.sender_id, y.deleted_at FROM chat.messages y
        WHERE y.conversation_id = c.conversation_id AND y.message_id = c.message_id AND y.sent_at = c.sent_at
        OFFSET 0) m
    JOIN chat.members mb
      ON mb.conversation_id = c.conversation_id AND mb.user_id = c.user_id AND mb.left_at IS NULL AND mb.joined_at <= c.sent_at
    WHERE m.sender_id <> c.user_id
      AND (m.deleted_at IS NULL OR m.deleted_at > :'prev'::timestamptz)
      AND NOT EXISTS (
          SELECT 1 FROM chat.receipts r
          WHERE r.conversation_id = c.conversation_id AND r.message_id = c.message_id AND r.sent_at = c.sent_at
            AND r.recipient_id = c.user_id AND (r.status = 3 OR r.read_at IS NOT NULL)
            AND r.updated_at <= :'prev'::timestamptz)
    GROUP BY c.conversation_id, c.user_id
)
SELECT conversation_id, user_id, sum(plus)::integer AS plus, sum(minus)::integer AS minus, max(last_message_at) AS last_message_at
FROM (SELECT conversation_id, user_id, plus, 0 AS minus, last_message_at FROM new_messages
      UNION ALL
      SELECT conversation_id, user_id, 0, minus, NULL FROM gone) d
WHERE NOT EXISTS (
    SELECT 1 FROM chat.members x
    WHERE x.conversation_id = d.conversation_id AND x.user_id = d.user_id
      AND (x.joined_at > :'prev'::timestamptz OR x.left_at > :'prev'::timestamptz))
GROUP BY conversation_id, user_id
