-- Incremental unread counts, second part: after Queries/unread_changes.sql found what changed
-- and Queries/unread_reads.sql found the read receipts of the items, each item is unread or not
-- by the definition of Queries/unread_full.sql; chat.unread_messages gets or loses its row and
-- the counts of the pairs touched are recounted (docs/jobs.md).
--
-- By hand, in the same transaction: psql -f Queries/unread_apply.sql

-- Each item now: inside the member's current membership, and unread or not (its read receipts
-- were found a day at a time by Queries/unread_reads.sql).
-- Temporary tables only, joined on several columns whose combination the planner cannot estimate
-- (it expects one row and would nest loops over 100,000s): hash joins.
SET LOCAL enable_nestloop = off;
CREATE TEMP TABLE unread_item_state ON COMMIT DROP AS
SELECT i.conversation_id, i.user_id, i.message_id, i.sent_at,
       coalesce(i.sent_at >= c.joined_at, false) AS in_membership,
       coalesce(i.sent_at >= c.joined_at AND m.sender_id <> i.user_id AND m.deleted_at IS NULL AND x.message_id IS NULL, false) AS unread,
       -- Whether the item can have a row in chat.unread_messages now: every row there has a
       -- counts row whose last_message_at is at or after the row's sent_at (each run that
       -- writes a row moves its pair's last_message_at up to it, and a pair taken whole gets
       -- the latest message since its join, which is the latest of its rows or later). A
       -- message sent after its pair's last_message_at (tonight's new messages) has no row to
       -- delete, and is not probed for one.
       coalesce(i.sent_at <= u.last_message_at, false) AS may_have_row
FROM pg_temp.unread_changed_items i
JOIN pg_temp.unread_changed_messages m
  ON m.conversation_id = i.conversation_id AND m.message_id = i.message_id AND m.sent_at = i.sent_at
-- A join, not a correlated NOT EXISTS in the select list (which would rescan the reads per item).
LEFT JOIN pg_temp.unread_item_reads x
  ON x.conversation_id = i.conversation_id AND x.user_id = i.user_id AND x.message_id = i.message_id AND x.sent_at = i.sent_at
LEFT JOIN (SELECT conversation_id, user_id, max(joined_at) AS joined_at FROM chat.members
           WHERE left_at IS NULL GROUP BY conversation_id, user_id) c
  ON c.conversation_id = i.conversation_id AND c.user_id = i.user_id
LEFT JOIN chat.unread_counts u
  ON u.conversation_id = i.conversation_id AND u.user_id = i.user_id
WHERE NOT EXISTS (SELECT 1 FROM pg_temp.unread_changed_pairs p
                  WHERE p.conversation_id = i.conversation_id AND p.user_id = i.user_id);
SET LOCAL enable_nestloop = on;
ANALYZE pg_temp.unread_item_state;

-- Pairs recomputed whole: their unread messages from their current join on.
DELETE FROM chat.unread_messages u
USING pg_temp.unread_changed_pairs p
WHERE u.conversation_id = p.conversation_id AND u.user_id = p.user_id;

INSERT INTO chat.unread_messages (conversation_id, user_id, message_id, sent_at)
SELECT m.conversation_id, c.user_id, m.message_id, m.sent_at
FROM (SELECT x.conversation_id, x.user_id, max(x.joined_at) AS joined_at
      FROM pg_temp.unread_changed_pairs p
      JOIN chat.members x ON x.conversation_id = p.conversation_id AND x.user_id = p.user_id AND x.left_at IS NULL
      GROUP BY x.conversation_id, x.user_id) c
JOIN chat.messages m ON m.conversation_id = c.conversation_id AND m.sent_at >= c.joined_at
WHERE m.sender_id <> c.user_id AND m.deleted_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM chat.receipts r
      WHERE r.conversation_id = m.conversation_id AND r.message_id = m.message_id AND r.recipient_id = c.user_id
        AND r.sent_at >= m.sent_at - interval '1 day' AND r.sent_at <= m.sent_at + interval '1 day'
        AND (r.status = 3 OR r.read_at IS NOT NULL));

-- Items: read, deleted or outside the membership now → no row; unread now → a row. The rows
-- really deleted and inserted are counted per pair: a pair not taken whole is recounted as its
-- count plus what it gained less what it lost, which is its number of rows here (the count and
-- the rows agree after every run; --verify checks both against a full recompute).
CREATE TEMP TABLE unread_set_delta (conversation_id bigint, user_id bigint, delta bigint) ON COMMIT DROP;

WITH gone AS (
    DELETE FROM chat.unread_messages u
    USING pg_temp.unread_item_state s
    WHERE NOT s.unread AND s.may_have_row AND u.conversation_id = s.conversation_id AND u.user_id = s.user_id
      AND u.message_id = s.message_id AND u.sent_at = s.sent_at
    RETURNING u.conversation_id, u.user_id
)
INSERT INTO pg_temp.unread_set_delta SELECT conversation_id, user_id, -count(*) FROM gone GROUP BY 1, 2;

WITH added AS (
    INSERT INTO chat.unread_messages (conversation_id, user_id, message_id, sent_at)
    -- In key order: the primary key's pages are then written in one pass.
    SELECT conversation_id, user_id, message_id, sent_at FROM pg_temp.unread_item_state WHERE unread
    ORDER BY conversation_id, user_id, message_id, sent_at
    ON CONFLICT DO NOTHING
    RETURNING conversation_id, user_id
)
INSERT INTO pg_temp.unread_set_delta SELECT conversation_id, user_id, count(*) FROM added GROUP BY 1, 2;

-- The pairs whose counts may have changed. A pair without a counts row yet is taken whole.
CREATE TEMP TABLE unread_touched ON COMMIT DROP AS
SELECT t.conversation_id, t.user_id,
       bool_or(t.whole) OR bool_and(u.conversation_id IS NULL) AS whole,
       max(t.last_at) AS last_at
FROM (SELECT conversation_id, user_id, true AS whole, NULL::timestamptz AS last_at FROM pg_temp.unread_changed_pairs
      UNION ALL
      SELECT conversation_id, user_id, false, max(sent_at) FILTER (WHERE in_membership)
      FROM pg_temp.unread_item_state GROUP BY conversation_id, user_id) t
-- a pair without a count row is taken whole (a join instead of NOT EXISTS: Citus refuses a
-- correlated subquery here)
LEFT JOIN chat.unread_counts u ON u.conversation_id = t.conversation_id AND u.user_id = t.user_id
GROUP BY t.conversation_id, t.user_id;

-- Touched pairs that are no longer members have no row.
DELETE FROM chat.unread_counts u
USING pg_temp.unread_touched t
WHERE u.conversation_id = t.conversation_id AND u.user_id = t.user_id
  AND NOT EXISTS (SELECT 1 FROM chat.members x
                  WHERE x.conversation_id = u.conversation_id AND x.user_id = u.user_id AND x.left_at IS NULL);

-- Pairs taken whole: count and last message time from scratch.
INSERT INTO chat.unread_counts AS u (conversation_id, user_id, unread, last_message_at, updated_at)
SELECT c.conversation_id, c.user_id,
       (SELECT count(*) FROM chat.unread_messages x WHERE x.conversation_id = c.conversation_id AND x.user_id = c.user_id),
       (SELECT max(m.sent_at) FROM chat.messages m WHERE m.conversation_id = c.conversation_id AND m.sent_at >= c.joined_at),
       now()
FROM (SELECT x.conversation_id, x.user_id, max(x.joined_at) AS joined_at
      FROM pg_temp.unread_touched t
      JOIN chat.members x ON x.conversation_id = t.conversation_id AND x.user_id = t.user_id AND x.left_at IS NULL
      WHERE t.whole
      GROUP BY x.conversation_id, x.user_id) c
ON CONFLICT (conversation_id, user_id) DO UPDATE
   SET unread = EXCLUDED.unread, last_message_at = EXCLUDED.last_message_at, updated_at = EXCLUDED.updated_at
 WHERE u.unread IS DISTINCT FROM EXCLUDED.unread OR u.last_message_at IS DISTINCT FROM EXCLUDED.last_message_at;

-- Other touched pairs: their count moves by what their rows gained and lost; the last message
-- time can only move forward.
UPDATE chat.unread_counts u
   SET unread = u.unread + coalesce(n.delta, 0), last_message_at = greatest(u.last_message_at, t.last_at), updated_at = now()
  FROM pg_temp.unread_touched t
  LEFT JOIN (SELECT conversation_id, user_id, sum(delta)::integer AS delta FROM pg_temp.unread_set_delta GROUP BY 1, 2) n
    ON n.conversation_id = t.conversation_id AND n.user_id = t.user_id
 WHERE NOT t.whole AND u.conversation_id = t.conversation_id AND u.user_id = t.user_id
   AND (coalesce(n.delta, 0) <> 0 OR t.last_at > coalesce(u.last_message_at, '-infinity'::timestamptz));
