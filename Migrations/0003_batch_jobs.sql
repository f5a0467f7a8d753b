-- Tables written by the nightly batch jobs (Queries/*.sql).

-- Redrive bookkeeping: attempts up to this number happened before the last redrive and no
-- longer count toward max_attempts.
ALTER TABLE chat.dead_letters ADD COLUMN redrive_after_attempt integer;

-- The message's sent_at on each delivery attempt, so reconciliation finds the receipt of a
-- tracked delivery by its full key (partition pruning) instead of scanning old partitions.
ALTER TABLE chat.delivery_attempts ADD COLUMN sent_at timestamptz;

-- Unread count and last message time per (conversation, member), for the application to read.
CREATE TABLE chat.unread_counts (
    conversation_id  bigint NOT NULL REFERENCES chat.conversations (conversation_id),
    user_id          bigint NOT NULL,
    unread           integer NOT NULL CHECK (unread >= 0),
    last_message_at  timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id)
);

-- Every change the receipt repair made: what, the old and new values, and the run.
CREATE TABLE chat.receipt_repairs (
    conversation_id  bigint NOT NULL REFERENCES chat.conversations (conversation_id),
    run_id           bigint NOT NULL,
    message_id       bigint NOT NULL,
    recipient_id     bigint NOT NULL,
    category         text NOT NULL,
    action           text NOT NULL CHECK (action IN ('update', 'delete', 'insert')),
    old_value        jsonb,
    new_value        jsonb,
    repaired_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, run_id, message_id, recipient_id, category)
);

-- Daily activity per user, rolled up from presence and activity.
CREATE TABLE chat.daily_activity (
    user_id          bigint NOT NULL,
    day              date NOT NULL,
    messages_sent    integer NOT NULL DEFAULT 0,
    receipts_delivered integer NOT NULL DEFAULT 0,
    messages_read    integer NOT NULL DEFAULT 0,
    sessions         integer NOT NULL DEFAULT 0,
    seconds_online   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
);

-- One row per day: daily active users, sessions, time online.
CREATE TABLE chat.daily_summary (
    day              date PRIMARY KEY,
    active_users     integer NOT NULL,
    sessions         bigint NOT NULL,
    seconds_online   bigint NOT NULL,
    messages         bigint NOT NULL
);

GRANT SELECT ON chat.unread_counts, chat.receipt_repairs, chat.daily_activity, chat.daily_summary
    TO chatstore_readonly, chatstore_app, chatstore_batch;
GRANT INSERT, UPDATE, DELETE ON chat.unread_counts, chat.receipt_repairs, chat.daily_activity, chat.daily_summary
    TO chatstore_batch;
