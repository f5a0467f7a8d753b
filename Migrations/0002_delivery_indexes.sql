-- chatstore:no-transaction
-- Indexes built without blocking writes (CREATE INDEX CONCURRENTLY cannot run in a transaction).
-- The migrator runs each statement on its own, records each step, and on a rerun resumes after
-- the last completed step; an index left INVALID by a failed build is dropped and rebuilt.

CREATE INDEX CONCURRENTLY IF NOT EXISTS delivery_attempts_due
    ON chat.delivery_attempts (conversation_id, scheduled_at)
    WHERE attempted_at IS NULL;

CREATE INDEX CONCURRENTLY IF NOT EXISTS dead_letters_pending
    ON chat.dead_letters (conversation_id, dead_at)
    WHERE redriven_at IS NULL;
