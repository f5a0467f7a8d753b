-- Writes a database's contents as chatstore NDJSON events (docs/events.md) in time order, the way
-- a service's event log interleaves them: each event at the time it happened, never before what it
-- refers to (a receipt stamped before its message was sent, one of the generator's anomalies, is
-- logged after the message). scripts/bench/events-from-db.sql writes the same events grouped by type.
-- Usage: psql -qAtX "$URL" -f scripts/bench/events-in-time-order.sql > events.ndjson
WITH ev(ts, k, a, b, c, j) AS (
  SELECT created_at, 0, user_id, 0::bigint, 0::bigint,
         json_build_object('type', 'user', 'user_id', user_id, 'handle', handle, 'display_name', display_name,
                           'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  FROM chat.users
  UNION ALL
  SELECT c.created_at, 1, c.conversation_id, 0, 0,
         json_build_object('type', 'conversation', 'conversation_id', c.conversation_id, 'kind', c.kind, 'title', c.title, 'created_by', c.created_by,
                           'created_at', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  FROM chat.conversations c
  UNION ALL
  SELECT greatest(m.joined_at, c.created_at), 2, m.conversation_id, m.user_id, 0,
         json_build_object('type', 'join', 'conversation_id', m.conversation_id, 'user_id', m.user_id, 'role', m.role,
                           'at', to_char(m.joined_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  FROM chat.members m JOIN chat.conversations c USING (conversation_id)
  UNION ALL
  SELECT greatest(m.sent_at, c.created_at), 3, m.conversation_id, m.message_id, 0,
         json_build_object('type', 'message', 'conversation_id', m.conversation_id, 'message_id', m.message_id, 'sender_id', m.sender_id,
                           'sent_at', to_char(m.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'kind', CASE m.kind WHEN 'media' THEN 'text' ELSE m.kind END,
                           'body', m.body, 'reply_to_id', m.reply_to_id, 'client_message_id', m.client_message_id)
  FROM chat.messages m JOIN chat.conversations c USING (conversation_id)
  UNION ALL
  SELECT greatest(r.at, m.sent_at, c.created_at), r.k, r.conversation_id, r.message_id, r.recipient_id,
         json_build_object('type', r.t, 'conversation_id', r.conversation_id, 'message_id', r.message_id, 'recipient_id', r.recipient_id,
                           'at', to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  FROM (SELECT 'delivered' AS t, 4 AS k, conversation_id, message_id, recipient_id, delivered_at AS at FROM chat.receipts WHERE delivered_at IS NOT NULL
        UNION ALL
        SELECT 'read', 5, conversation_id, message_id, recipient_id, read_at FROM chat.receipts WHERE read_at IS NOT NULL) r
  JOIN chat.messages m USING (conversation_id, message_id)
  JOIN chat.conversations c USING (conversation_id)
  UNION ALL
  SELECT occurred_at, 6, user_id, 0, 0,
         json_build_object('type', 'presence', 'user_id', user_id, 'device_id', device_id, 'state', state,
                           'at', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  FROM chat.presence_events
)
SELECT j FROM ev ORDER BY ts, k, a, b, c;
