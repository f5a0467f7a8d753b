-- Incremental unread counts: everything that changed since the previous run's snapshot
-- (:'prev', a pg_snapshot; :'prev_xmin', its xmin), recomputed exactly (docs/jobs.md).
--
-- A row changed since that run when the transaction that last wrote it (change_xid) is not
-- visible in :'prev': committed after the snapshot was taken, whatever its timestamps say and
-- however long it stayed open. change_xid >= xmin finds them through the BRIN indexes (a few
-- pages per partition); pg_visible_in_snapshot keeps exactly the ones that are new.
--
-- What is recomputed:
--   a member whose membership row changed (join, leave, rejoin): the pair, whole;
--   a message whose row changed (new, late, edited, deleted, undeleted): that message for every
--     current member of its conversation;
--   a receipt that changed: its message for its recipient.
-- Each (member, message) is then unread or not by the definition of Queries/unread_full.sql, and
-- chat.unread_messages gets or loses its row; the counts of the pairs touched are recounted
-- from it. Nothing is added as a delta, so a change seen twice cannot be counted twice.
--
-- Temporary tables are analyzed as they are made (autovacuum never does), so the plans that
-- join them fit what the night changed, a few rows or millions.
--
-- By hand, in one REPEATABLE READ transaction (psql -1 with default_transaction_isolation):
--   psql -v prev="'1234:1240:1236'" -v prev_xmin=1234 -f Queries/unread_changes.sql

-- Membership rows written since the previous run: these pairs are recomputed whole.
CREATE TEMP TABLE unread_changed_pairs ON COMMIT DROP AS
SELECT DISTINCT conversation_id, user_id
FROM chat.members
WHERE change_xid >= :'prev_xmin'::bigint
  AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot);
ANALYZE pg_temp.unread_changed_pairs;

-- (member, message) items to re-evaluate: changed messages for every current member, changed
-- receipts for their recipient (the message rows within a day of the receipt's sent_at).
CREATE TEMP TABLE unread_changed_items ON COMMIT DROP AS
SELECT m.conversation_id, c.user_id, m.message_id, m.sent_at
FROM chat.messages m
JOIN (SELECT DISTINCT conversation_id, user_id FROM chat.members WHERE left_at IS NULL) c
  ON c.conversation_id = m.conversation_id
WHERE m.change_xid >= :'prev_xmin'::bigint
  AND NOT pg_visible_in_snapshot(m.change_xid::text::xid8, :'prev'::pg_snapshot)
UNION
SELECT r.conversation_id, r.recipient_id, y.message_id, y.sent_at
FROM chat.receipts r
-- LATERAL ... OFFSET 0: one index probe by key into the partitions of that day.
CROSS JOIN LATERAL (
    SELECT y.message_id, y.sent_at FROM chat.messages y
    WHERE y.conversation_id = r.conversation_id AND y.message_id = r.message_id
      AND y.sent_at >= r.sent_at - interval '1 day' AND y.sent_at <= r.sent_at + interval '1 day'
    OFFSET 0) y
WHERE r.change_xid >= :'prev_xmin'::bigint
  AND NOT pg_visible_in_snapshot(r.change_xid::text::xid8, :'prev'::pg_snapshot);
ANALYZE pg_temp.unread_changed_items;

-- Each item now: inside the member's current membership, and unread or not.
CREATE TEMP TABLE unread_item_state ON COMMIT DROP AS
SELECT i.conversation_id, i.user_id, i.message_id, i.sent_at,
       coalesce(i.sent_at >= c.joined_at, false) AS in_membership,
       coalesce(i.sent_at >= c.joined_at AND m.sender_id <> i.user_id AND m.deleted_at IS NULL
                AND NOT EXISTS (
                    SELECT 1 FROM chat.receipts r
                    WHERE r.conversation_id = i.conversation_id AND r.message_id = i.message_id AND r.recipient_id = i.user_id
                      AND r.sent_at >= i.sent_at - interval '1 day' AND r.sent_at <= i.sent_at + interval '1 day'
                      AND (r.status = 3 OR r.read_at IS NOT NULL)), false) AS unread
FROM pg_temp.unread_changed_items i
CROSS JOIN LATERAL (
    SELECT y.sender_id, y.deleted_at FROM chat.messages y
    WHERE y.conversation_id = i.conversation_id AND y.message_id = i.message_id AND y.sent_at = i.sent_at
    OFFSET 0) m
CROSS JOIN LATERAL (
    SELECT max(x.joined_at) AS joined_at FROM chat.members x
    WHERE x.conversation_id = i.conversation_id AND x.user_id = i.user_id AND x.left_at IS NULL) c
WHERE NOT EXISTS (SELECT 1 FROM pg_temp.unread_changed_pairs p
                  WHERE p.conversation_id = i.conversation_id AND p.user_id = i.user_id);
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

-- Items: read, deleted or outside the membership now → no row; unread now → a row.
DELETE FROM chat.unread_messages u
USING pg_temp.unread_item_state s
WHERE NOT s.unread AND u.conversation_id = s.conversation_id AND u.user_id = s.user_id
  AND u.message_id = s.message_id AND u.sent_at = s.sent_at;

INSERT INTO chat.unread_messages (conversation_id, user_id, message_id, sent_at)
SELECT conversation_id, user_id, message_id, sent_at FROM pg_temp.unread_item_state WHERE unread
ON CONFLICT DO NOTHING;

-- The pairs whose counts may have changed. A pair without a counts row yet is taken whole.
CREATE TEMP TABLE unread_touched ON COMMIT DROP AS
SELECT t.conversation_id, t.user_id,
       bool_or(t.whole) OR NOT EXISTS (SELECT 1 FROM chat.unread_counts u
                                       WHERE u.conversation_id = t.conversation_id AND u.user_id = t.user_id) AS whole,
       max(t.last_at) AS last_at
FROM (SELECT conversation_id, user_id, true AS whole, NULL::timestamptz AS last_at FROM pg_temp.unread_changed_pairs
      UNION ALL
      SELECT conversation_id, user_id, false, max(sent_at) FILTER (WHERE in_membership)
      FROM pg_temp.unread_item_state GROUP BY conversation_id, user_id) t
GROUP BY t.conversation_id, t.user_id;

-- Touched pairs that are no longer members have no row.
DELETE FROM chat.unread_counts u
USING pg_temp.unread_touched t
WHERE u.conversation_id = t.conversation_id AND u.user_id = t.user_id
  AND NOT EXISTS (SELECT 1 FROM chat.members x
                  WHERE x.conversation_id = t.conversation_id AND x.user_id = t.user_id AND x.left_at IS NULL);

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
   SET unread = EXCLUDED.unread, last_message_at = EXCLUDED.last_message_at, updated_at = now()
 WHERE u.unread IS DISTINCT FROM EXCLUDED.unread OR u.last_message_at IS DISTINCT FROM EXCLUDED.last_message_at;

-- Other touched pairs: recount; the last message time can only move forward.
UPDATE chat.unread_counts u
   SET unread = n.unread, last_message_at = greatest(u.last_message_at, t.last_at), updated_at = now()
  FROM pg_temp.unread_touched t
 CROSS JOIN LATERAL (SELECT count(*)::integer AS unread FROM chat.unread_messages x
                     WHERE x.conversation_id = t.conversation_id AND x.user_id = t.user_id) n
 WHERE NOT t.whole AND u.conversation_id = t.conversation_id AND u.user_id = t.user_id
   AND (u.unread <> n.unread OR t.last_at > coalesce(u.last_message_at, '-infinity'::timestamptz));
