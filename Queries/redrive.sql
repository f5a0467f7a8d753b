-- Redrive: moves up to :'limit' dead letters back to delivery (oldest first), optionally only one
-- reason, by marking them redriven and scheduling a fresh attempt now. Attempts before a redrive
-- no longer count toward max_attempts. The first statement selects (the dry run shows only it).
--
-- By hand: psql -1 -v now="'2026-11-29'" -v limit=100 -v reason="'poison'" -f Queries/redrive.sql   (reason '' for all)

CREATE TEMP TABLE redrive_plan ON COMMIT DROP AS
SELECT conversation_id, message_id, recipient_id, reason, attempts, dead_at, sent_at
FROM chat.dead_letters
WHERE redriven_at IS NULL AND (:'reason'::text = '' OR reason = :'reason'::text)
ORDER BY dead_at, conversation_id, message_id, recipient_id
LIMIT :'limit'::integer;

UPDATE chat.dead_letters d
   SET redriven_at = :'now'::timestamptz,
       redrive_after_attempt = (SELECT coalesce(max(x.attempt), 0) FROM chat.delivery_attempts x
                                WHERE x.conversation_id = d.conversation_id AND x.message_id = d.message_id AND x.recipient_id = d.recipient_id)
FROM pg_temp.redrive_plan p
WHERE d.conversation_id = p.conversation_id AND d.message_id = p.message_id AND d.recipient_id = p.recipient_id;

INSERT INTO chat.delivery_attempts (conversation_id, message_id, recipient_id, attempt, scheduled_at, sent_at)
SELECT p.conversation_id, p.message_id, p.recipient_id,
       coalesce((SELECT max(x.attempt) FROM chat.delivery_attempts x
                 WHERE x.conversation_id = p.conversation_id AND x.message_id = p.message_id AND x.recipient_id = p.recipient_id), 0) + 1,
       :'now'::timestamptz, p.sent_at
FROM pg_temp.redrive_plan p
ON CONFLICT DO NOTHING;
