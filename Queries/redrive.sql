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

-- The pairs' highest attempt number so far, read once: the attempts after the redrive count
-- from it, and the next attempt continues from it (never a correlated scan of the table the
-- insert below writes; Citus runs this on the shards).
CREATE TEMP TABLE redrive_attempts ON COMMIT DROP AS
SELECT x.conversation_id, x.message_id, x.recipient_id, max(x.attempt) AS last_attempt
FROM chat.delivery_attempts x
WHERE (x.conversation_id, x.message_id, x.recipient_id) IN (SELECT conversation_id, message_id, recipient_id FROM pg_temp.redrive_plan)
GROUP BY x.conversation_id, x.message_id, x.recipient_id;

UPDATE chat.dead_letters d
   SET redriven_at = :'now'::timestamptz, redrive_after_attempt = p.last_attempt
FROM (SELECT p.conversation_id, p.message_id, p.recipient_id, coalesce(a.last_attempt, 0) AS last_attempt
      FROM pg_temp.redrive_plan p
      LEFT JOIN pg_temp.redrive_attempts a
        ON a.conversation_id = p.conversation_id AND a.message_id = p.message_id AND a.recipient_id = p.recipient_id) p
WHERE d.conversation_id = p.conversation_id AND d.message_id = p.message_id AND d.recipient_id = p.recipient_id;

INSERT INTO chat.delivery_attempts (conversation_id, message_id, recipient_id, attempt, scheduled_at, sent_at)
SELECT p.conversation_id, p.message_id, p.recipient_id, coalesce(a.last_attempt, 0) + 1, :'now'::timestamptz, p.sent_at
FROM pg_temp.redrive_plan p
LEFT JOIN pg_temp.redrive_attempts a
  ON a.conversation_id = p.conversation_id AND a.message_id = p.message_id AND a.recipient_id = p.recipient_id
ON CONFLICT DO NOTHING;
