-- Full unread recompute, one chunk of days ([lo, hi)) of messages at a time: what
-- Queries/unread_messages_full.sql and Queries/unread_full.sql define in one statement each,
-- computed partition by partition, so that each statement hashes the messages of those days and
-- the read receipts of those days and the day either side, whatever the history (its memory and
-- temporary space are those of a few partitions; the one-statement form was planned as an index
-- probe per (message, member) and took minutes at 70 days).
--
-- pg_temp.unread_current (conversation_id, user_id, joined_at): each current member's current
-- join, made once by the job (see Queries/unread_full.sql for the definitions). Each chunk fills
-- pg_temp.unread_expected_messages with its own unread (member, message) rows (emptied first:
-- the job writes or compares them with chat.unread_messages, Queries/unread_apply_full_rows.sql
-- or unread_verify_rows.sql, before the next chunk, so no table holds the whole history's rows),
-- and adds to pg_temp.unread_expected_counts (each pair's unread rows in the chunk) and
-- pg_temp.unread_expected_last (the latest message of the chunk per pair, deleted ones included).
--
-- By hand, per chunk: psql -v lo="'2026-11-29'" -v hi="'2026-11-30'" -f Queries/unread_full_chunk.sql

-- A day's messages are joined to the members by hash or merge, never by a nested loop: the planner
-- chose an index probe of the day's messages per member (Memoize keyed on the member: no hits),
-- 13.8 s for a day of 188,489 messages and 24,172 members, against 3.1 s merged (4,000 users, 45
-- messages a day). The session's own setting is saved first and put back after the statement.
TRUNCATE pg_temp.unread_expected_messages;
SELECT set_config('chatstore.saved_nestloop', current_setting('enable_nestloop'), true),
       set_config('enable_nestloop', 'off', true);
INSERT INTO pg_temp.unread_expected_messages (conversation_id, user_id, message_id, sent_at)
SELECT m.conversation_id, c.user_id, m.message_id, m.sent_at
FROM pg_temp.unread_current c
JOIN chat.messages m ON m.conversation_id = c.conversation_id AND m.sent_at >= c.joined_at
WHERE m.sent_at >= :'lo'::timestamptz AND m.sent_at < :'hi'::timestamptz
  AND m.sender_id <> c.user_id AND m.deleted_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM chat.receipts r
      WHERE r.conversation_id = m.conversation_id AND r.message_id = m.message_id AND r.recipient_id = c.user_id
        AND r.sent_at >= m.sent_at - interval '1 day' AND r.sent_at <= m.sent_at + interval '1 day'
        AND r.sent_at >= (:'lo'::timestamptz AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::timestamptz AT TIME ZONE 'UTC' + interval '1 day') AT TIME ZONE 'UTC'
        AND (r.status = 3 OR r.read_at IS NOT NULL));
SELECT set_config('enable_nestloop', current_setting('chatstore.saved_nestloop'), true);
ANALYZE pg_temp.unread_expected_messages;
INSERT INTO pg_temp.unread_expected_counts (conversation_id, user_id, unread)
SELECT conversation_id, user_id, count(*) FROM pg_temp.unread_expected_messages GROUP BY 1, 2;

INSERT INTO pg_temp.unread_expected_last (conversation_id, user_id, last_message_at)
SELECT c.conversation_id, c.user_id, max(m.sent_at)
FROM pg_temp.unread_current c
JOIN chat.messages m ON m.conversation_id = c.conversation_id AND m.sent_at >= c.joined_at
WHERE m.sent_at >= :'lo'::timestamptz AND m.sent_at < :'hi'::timestamptz
GROUP BY c.conversation_id, c.user_id;
