-- Writes a database's contents as chatstore NDJSON events (docs/events.md), in dependency order.
-- Usage: psql -qAtX "$URL" -f scripts/bench/events-from-db.sql > events.ndjson
SELECT json_build_object('type', 'user', 'user_id', user_id, 'handle', handle, 'display_name', display_name,
                         'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
FROM chat.users ORDER BY user_id;
SELECT json_build_object('type', 'conversation', 'conversation_id', conversation_id, 'kind', kind, 'title', title, 'created_by', created_by,
                         'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
FROM chat.conversations ORDER BY conversation_id;
SELECT json_build_object('type', 'join', 'conversation_id', conversation_id, 'user_id', user_id, 'role', role,
                         'at', to_char(joined_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
FROM chat.members ORDER BY conversation_id, user_id;
SELECT json_build_object('type', 'message', 'conversation_id', conversation_id, 'message_id', message_id, 'sender_id', sender_id,
                         'sent_at', to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'kind', CASE kind WHEN 'media' THEN 'text' ELSE kind END,
                         'body', body, 'reply_to_id', reply_to_id, 'client_message_id', client_message_id)
FROM chat.messages ORDER BY sent_at, conversation_id, message_id;
SELECT json_build_object('type', t, 'conversation_id', conversation_id, 'message_id', message_id, 'recipient_id', recipient_id,
                         'at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
FROM (SELECT 'delivered' AS t, conversation_id, message_id, recipient_id, delivered_at AS at FROM chat.receipts WHERE delivered_at IS NOT NULL
      UNION ALL
      SELECT 'read', conversation_id, message_id, recipient_id, read_at FROM chat.receipts WHERE read_at IS NOT NULL) r
ORDER BY at, conversation_id, message_id, recipient_id, t;
SELECT json_build_object('type', 'presence', 'user_id', user_id, 'device_id', device_id, 'state', state,
                         'at', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
FROM chat.presence_events ORDER BY occurred_at, user_id;
