-- Unread state after retirement detached the messages sent in [from, to): they are no longer
-- live, so they are no longer unread (a full recompute no longer sees them). Their unread rows
-- go, and the pairs they touched move by the rows they lost; a pair whose last message was in
-- the range gets its last message time again from the messages still live. Runs in the
-- detach's transaction, which holds the partitioned tables' locks: every statement here is a
-- pass over the range's unread rows or over a few pairs, never a recount per pair (retire took
-- 260 s on the scale run's month with 26.6M unread rows, against 17 s with none).
--
-- By hand, in that transaction: psql -v from="'2026-08-01'" -v to="'2026-08-02'" -f Queries/unread_retire.sql

-- The range's unread rows, deleted in one pass (the BRIN index on sent_at finds them), counted
-- per pair as they go.
CREATE TEMP TABLE unread_retired (conversation_id bigint, user_id bigint, gone bigint) ON COMMIT DROP;
WITH gone AS (
    DELETE FROM chat.unread_messages WHERE sent_at >= :'from'::timestamptz AND sent_at < :'to'::timestamptz
    RETURNING conversation_id, user_id
)
INSERT INTO pg_temp.unread_retired SELECT conversation_id, user_id, count(*) FROM gone GROUP BY 1, 2;
ANALYZE pg_temp.unread_retired;

-- A pair's count is the number of its rows (each run keeps them equal; --verify checks both),
-- so it moves by the rows it lost.
UPDATE chat.unread_counts u
   SET unread = u.unread - t.gone, updated_at = now()
  FROM pg_temp.unread_retired t
 WHERE u.conversation_id = t.conversation_id AND u.user_id = t.user_id;

-- Pairs whose last message was in the range: the latest live message since their join (the
-- range's messages are detached by now, so none of them counts).
UPDATE chat.unread_counts u
   SET last_message_at = (SELECT max(m.sent_at) FROM chat.messages m
                          WHERE m.conversation_id = u.conversation_id
                            AND m.sent_at >= (SELECT max(joined_at) FROM chat.members mb
                                              WHERE mb.conversation_id = u.conversation_id AND mb.user_id = u.user_id AND mb.left_at IS NULL)),
       updated_at = now()
 WHERE u.last_message_at >= :'from'::timestamptz AND u.last_message_at < :'to'::timestamptz;
