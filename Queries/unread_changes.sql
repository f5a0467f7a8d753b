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
-- chat.unread_messages gets or loses its row; each touched pair's count moves by the rows it
-- really gained and lost (a pair taken whole is counted from its rows). The rows are recomputed,
-- never adjusted, so a change seen twice cannot be counted twice.
--
-- Temporary tables are analyzed as they are made (autovacuum never does), so the plans that
-- join them fit what the night changed, a few rows or millions.
--
-- This file finds what changed; Queries/unread_reads.sql then finds the items' read receipts a
-- day at a time, and Queries/unread_apply.sql recomputes and writes.
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

-- Messages to re-evaluate: those written since, and those of receipts written since (the
-- message rows within a day of the receipt's sent_at; each message probed once).
-- own: the message's row itself was written since (else only receipts of it were).
CREATE TEMP TABLE unread_changed_messages ON COMMIT DROP AS
SELECT conversation_id, message_id, sent_at, sender_id, deleted_at, true AS own
FROM chat.messages
WHERE change_xid >= :'prev_xmin'::bigint
  AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot);
ANALYZE pg_temp.unread_changed_messages;

-- ... and the messages of receipts written since that are not among them (usually the late
-- reads of older messages: the receipts of new messages have their message above). The
-- receipts' keys are collected first, then the message rows within a day of each receipt's
-- sent_at are found by key, then whatever is already listed is left out. Each step is a plain
-- join or a statement over temporary tables alone, which Citus runs too (it refuses a LATERAL
-- or a correlated subquery between a temporary and a distributed table).
CREATE TEMP TABLE unread_changed_receipt_keys ON COMMIT DROP AS
SELECT DISTINCT conversation_id, message_id, sent_at FROM chat.receipts
WHERE change_xid >= :'prev_xmin'::bigint
  AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot);
DELETE FROM pg_temp.unread_changed_receipt_keys r USING pg_temp.unread_changed_messages k
WHERE k.conversation_id = r.conversation_id AND k.message_id = r.message_id AND k.sent_at = r.sent_at;
ANALYZE pg_temp.unread_changed_receipt_keys;

-- Few keys (up to 20,000: a night's late reads of older messages) are probed one by one, each
-- in the one or two partitions its sent_at allows (run-time pruning of the nested loop's inner
-- side): the planner would otherwise hash them against a scan of every messages partition (at
-- 70 days: 1.1M rows, 0.6 s, for 627 keys; probed: 8-16 ms). Many keys (a backlog) are hashed.
-- The session's own settings are saved first and put back after the statement.
SELECT set_config('chatstore.saved_hashjoin', current_setting('enable_hashjoin'), true),
       set_config('chatstore.saved_mergejoin', current_setting('enable_mergejoin'), true);
SELECT set_config('enable_hashjoin', CASE WHEN count(*) <= 20000 THEN 'off' ELSE current_setting('enable_hashjoin') END, true),
       set_config('enable_mergejoin', CASE WHEN count(*) <= 20000 THEN 'off' ELSE current_setting('enable_mergejoin') END, true)
FROM pg_temp.unread_changed_receipt_keys;
CREATE TEMP TABLE unread_receipt_messages ON COMMIT DROP AS
SELECT y.conversation_id, y.message_id, y.sent_at, y.sender_id, y.deleted_at
FROM pg_temp.unread_changed_receipt_keys r
JOIN chat.messages y
  ON y.conversation_id = r.conversation_id AND y.message_id = r.message_id
 AND y.sent_at >= r.sent_at - interval '1 day' AND y.sent_at <= r.sent_at + interval '1 day';
SELECT set_config('enable_hashjoin', current_setting('chatstore.saved_hashjoin'), true),
       set_config('enable_mergejoin', current_setting('chatstore.saved_mergejoin'), true);

INSERT INTO pg_temp.unread_changed_messages (conversation_id, message_id, sent_at, sender_id, deleted_at, own)
SELECT DISTINCT y.conversation_id, y.message_id, y.sent_at, y.sender_id, y.deleted_at, false
FROM pg_temp.unread_receipt_messages y
WHERE NOT EXISTS (SELECT 1 FROM pg_temp.unread_changed_messages k
                  WHERE k.conversation_id = y.conversation_id AND k.message_id = y.message_id AND k.sent_at = y.sent_at);
ANALYZE pg_temp.unread_changed_messages;

-- (member, message) items to re-evaluate: a message written since, for every current member of
-- its conversation; a receipt written since of a message not written since, for its recipient
-- (a receipt of a message written since adds nothing: its recipient, if a current member, is
-- already an item, and if not, a member's leave took the pair whole). The two parts are disjoint.
CREATE TEMP TABLE unread_changed_items ON COMMIT DROP AS
SELECT m.conversation_id, c.user_id, m.message_id, m.sent_at
FROM pg_temp.unread_changed_messages m
JOIN (SELECT DISTINCT conversation_id, user_id FROM chat.members WHERE left_at IS NULL) c
  ON c.conversation_id = m.conversation_id
WHERE m.own
UNION ALL
SELECT DISTINCT r.conversation_id, r.recipient_id, m.message_id, m.sent_at
FROM chat.receipts r
JOIN pg_temp.unread_changed_messages m
  ON m.conversation_id = r.conversation_id AND m.message_id = r.message_id
 AND m.sent_at >= r.sent_at - interval '1 day' AND m.sent_at <= r.sent_at + interval '1 day'
WHERE NOT m.own
  AND r.change_xid >= :'prev_xmin'::bigint
  AND NOT pg_visible_in_snapshot(r.change_xid::text::xid8, :'prev'::pg_snapshot);
ANALYZE pg_temp.unread_changed_items;

CREATE TEMP TABLE unread_item_reads (conversation_id bigint, user_id bigint, message_id bigint, sent_at timestamptz) ON COMMIT DROP;
