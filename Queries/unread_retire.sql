-- Unread state after retirement detached the messages sent in [from, to): they are no longer
-- live, so they are no longer unread (a full recompute no longer sees them). Their unread rows
-- go, and the pairs they touched are recounted; a pair whose last message was in the range gets
-- its last message time again from the messages still live. Runs in the detach's transaction.
--
-- By hand, in that transaction: psql -v from="'2026-08-01'" -v to="'2026-08-02'" -f Queries/unread_retire.sql

CREATE TEMP TABLE unread_retired ON COMMIT DROP AS
SELECT conversation_id, user_id FROM chat.unread_messages
WHERE sent_at >= :'from'::timestamptz AND sent_at < :'to'::timestamptz
UNION
SELECT conversation_id, user_id FROM chat.unread_counts
WHERE last_message_at >= :'from'::timestamptz AND last_message_at < :'to'::timestamptz;

DELETE FROM chat.unread_messages WHERE sent_at >= :'from'::timestamptz AND sent_at < :'to'::timestamptz;

UPDATE chat.unread_counts u
   SET unread = (SELECT count(*) FROM chat.unread_messages x WHERE x.conversation_id = u.conversation_id AND x.user_id = u.user_id),
       last_message_at = (SELECT max(m.sent_at) FROM chat.messages m
                          WHERE m.conversation_id = u.conversation_id
                            AND m.sent_at >= (SELECT max(joined_at) FROM chat.members mb
                                              WHERE mb.conversation_id = u.conversation_id AND mb.user_id = u.user_id AND mb.left_at IS NULL)),
       updated_at = now()
  FROM pg_temp.unread_retired t
 WHERE u.conversation_id = t.conversation_id AND u.user_id = t.user_id;
