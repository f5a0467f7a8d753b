-- chatstore schema v1.
--
-- Every conversation-scoped table leads every key and index with conversation_id, so the schema
-- can be distributed by conversation_id on Citus (see docs/schema.md). Messages, receipts and
-- presence are range-partitioned by time; partitions are created by `chatstore partitions ensure`
-- from chat.partition_config, and a DEFAULT partition catches rows outside the premade range.
-- No triggers: the write path and the nightly audit keep the invariants.

CREATE SCHEMA IF NOT EXISTS chat;

-- Users: small and global (a reference table on Citus).
CREATE TABLE chat.users (
    user_id       bigint PRIMARY KEY,
    handle        text NOT NULL UNIQUE,
    display_name  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);

-- Conversations: direct (exactly two members) and groups (up to member_limit members).
CREATE TABLE chat.conversations (
    conversation_id  bigint PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('direct', 'group')),
    title            text,
    created_by       bigint REFERENCES chat.users (user_id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    member_limit     integer NOT NULL DEFAULT 1024 CHECK (member_limit BETWEEN 2 AND 100000),
    CHECK (kind = 'group' OR member_limit = 2)
);

-- Membership intervals: one row per (join, leave) of a user in a conversation. A member who
-- rejoins gets a new row; left_at IS NULL marks current membership.
CREATE TABLE chat.members (
    conversation_id  bigint NOT NULL REFERENCES chat.conversations (conversation_id),
    user_id          bigint NOT NULL REFERENCES chat.users (user_id),
    joined_at        timestamptz NOT NULL,
    left_at          timestamptz,
    role             text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
    PRIMARY KEY (conversation_id, user_id, joined_at),
    CHECK (left_at IS NULL OR left_at >= joined_at)
);

-- Media: content-addressed by sha256 within a conversation (deduplicated per conversation).
-- Bytes are stored zstd-compressed when that helps, as-is when not, or kept outside the database.
CREATE TABLE chat.media (
    conversation_id  bigint NOT NULL REFERENCES chat.conversations (conversation_id),
    sha256           bytea NOT NULL CHECK (length(sha256) = 32),
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    mime_type        text NOT NULL,
    file_name        text,
    encoding         text NOT NULL DEFAULT 'none' CHECK (encoding IN ('none', 'zstd', 'external')),
    bytes            bytea,
    external_uri     text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, sha256),
    CHECK ((encoding = 'external' AND bytes IS NULL AND external_uri IS NOT NULL)
        OR (encoding <> 'external' AND external_uri IS NULL))
);

-- Messages, partitioned by sent_at. message_id is a time-ordered 64-bit id
-- ((milliseconds since 2020-01-01) << 22 | worker << 12 | sequence).
CREATE TABLE chat.messages (
    conversation_id    bigint NOT NULL,
    message_id         bigint NOT NULL,
    sent_at            timestamptz NOT NULL,
    sender_id          bigint NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('text', 'media', 'system')),
    body               text,
    reply_to_id        bigint,
    client_message_id  text,
    media_sha256       bytea,
    edited_at          timestamptz,
    deleted_at         timestamptz,
    PRIMARY KEY (conversation_id, message_id, sent_at),
    FOREIGN KEY (conversation_id) REFERENCES chat.conversations (conversation_id),
    FOREIGN KEY (conversation_id, media_sha256) REFERENCES chat.media (conversation_id, sha256)
) PARTITION BY RANGE (sent_at);
CREATE TABLE chat.messages_default PARTITION OF chat.messages DEFAULT;
CREATE INDEX messages_by_sender ON chat.messages (conversation_id, sender_id, sent_at);

-- Idempotent sends: a retried send with the same client_message_id maps to the first message.
-- Not partitioned, so the key is global per (conversation, sender); rows older than the client
-- retry window can be deleted.
CREATE TABLE chat.send_dedup (
    conversation_id    bigint NOT NULL REFERENCES chat.conversations (conversation_id),
    sender_id          bigint NOT NULL,
    client_message_id  text NOT NULL,
    message_id         bigint NOT NULL,
    sent_at            timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, sender_id, client_message_id)
);

-- Per-recipient receipts: one row per (message, recipient), partitioned by the message's sent_at
-- so that receipts leave with their messages. status: 1 sent, 2 delivered, 3 read. Forward-only:
-- writers use GREATEST(); the nightly audit reports and repairs anything that went backwards.
CREATE TABLE chat.receipts (
    conversation_id  bigint NOT NULL,
    message_id       bigint NOT NULL,
    sent_at          timestamptz NOT NULL,
    recipient_id     bigint NOT NULL,
    status           smallint NOT NULL DEFAULT 1 CHECK (status BETWEEN 1 AND 3),
    delivered_at     timestamptz,
    read_at          timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, message_id, recipient_id, sent_at),
    FOREIGN KEY (conversation_id) REFERENCES chat.conversations (conversation_id)
) PARTITION BY RANGE (sent_at);
CREATE TABLE chat.receipts_default PARTITION OF chat.receipts DEFAULT;
CREATE INDEX receipts_by_recipient ON chat.receipts (conversation_id, recipient_id, status);

-- Presence: raw online/offline events per user and device, partitioned by time. User-scoped,
-- not conversation-scoped: on Citus it is distributed by user_id in its own colocation group.
CREATE TABLE chat.presence_events (
    user_id      bigint NOT NULL,
    occurred_at  timestamptz NOT NULL,
    device_id    text NOT NULL DEFAULT 'default',
    state        text NOT NULL CHECK (state IN ('online', 'offline')),
    PRIMARY KEY (user_id, occurred_at, device_id)
) PARTITION BY RANGE (occurred_at);
CREATE TABLE chat.presence_events_default PARTITION OF chat.presence_events DEFAULT;

-- Last seen per user, rolled up nightly from presence and activity.
CREATE TABLE chat.user_last_seen (
    user_id       bigint PRIMARY KEY,
    last_seen_at  timestamptz NOT NULL,
    source        text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Redelivery schedule: one row per attempt for a (message, recipient).
CREATE TABLE chat.delivery_attempts (
    conversation_id  bigint NOT NULL REFERENCES chat.conversations (conversation_id),
    message_id       bigint NOT NULL,
    recipient_id     bigint NOT NULL,
    attempt          integer NOT NULL CHECK (attempt >= 1),
    scheduled_at     timestamptz NOT NULL,
    attempted_at     timestamptz,
    outcome          text CHECK (outcome IN ('delivered', 'failed', 'superseded')),
    error            text,
    PRIMARY KEY (conversation_id, message_id, recipient_id, attempt)
);

-- Dead letters: deliveries given up on, with the reason (expired: too old; poison: kept failing).
CREATE TABLE chat.dead_letters (
    conversation_id   bigint NOT NULL REFERENCES chat.conversations (conversation_id),
    message_id        bigint NOT NULL,
    recipient_id      bigint NOT NULL,
    sent_at           timestamptz NOT NULL,
    reason            text NOT NULL CHECK (reason IN ('expired', 'poison')),
    attempts          integer NOT NULL,
    first_failure_at  timestamptz NOT NULL,
    last_error        text,
    dead_at           timestamptz NOT NULL DEFAULT now(),
    redriven_at       timestamptz,
    PRIMARY KEY (conversation_id, message_id, recipient_id)
);

-- Partition upkeep configuration, one row per partitioned table.
CREATE TABLE chat.partition_config (
    parent_table   text PRIMARY KEY,
    granularity    text NOT NULL DEFAULT 'day' CHECK (granularity IN ('day', 'week', 'month')),
    premake        integer NOT NULL DEFAULT 7 CHECK (premake BETWEEN 1 AND 400),
    retention      interval,
    lock_order     integer NOT NULL UNIQUE
);
INSERT INTO chat.partition_config (parent_table, granularity, premake, lock_order) VALUES
    ('messages', 'day', 7, 1),
    ('receipts', 'day', 7, 2),
    ('presence_events', 'day', 7, 3);

-- Ledger of batch job runs (local to the coordinator on Citus).
CREATE TABLE chat.job_runs (
    run_id       bigserial PRIMARY KEY,
    job          text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    watermark    text,
    stats        jsonb NOT NULL DEFAULT '{}',
    error        text,
    host         text,
    pid          integer
);
CREATE INDEX job_runs_by_job ON chat.job_runs (job, started_at DESC);

-- Ledger of archives written from partitions.
CREATE TABLE chat.archives (
    archive_id       bigserial PRIMARY KEY,
    parent_table     text NOT NULL,
    partition_name   text NOT NULL,
    range_start      timestamptz NOT NULL,
    range_end        timestamptz NOT NULL,
    path             text NOT NULL,
    manifest_sha256  text NOT NULL,
    row_count        bigint NOT NULL,
    bytes            bigint NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    verified_at      timestamptz,
    detached_at      timestamptz,
    dropped_at       timestamptz
);

-- Least-privilege roles (NOLOGIN groups: grant them to login roles).
--   chatstore_app       the application's writes: no DELETE of history, no DDL
--   chatstore_batch     nightly jobs: DML on every table, no DDL
--   chatstore_readonly  exports and analysts: SELECT only
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['chatstore_app', 'chatstore_batch', 'chatstore_readonly'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA chat TO chatstore_app, chatstore_batch, chatstore_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA chat TO chatstore_readonly, chatstore_app, chatstore_batch;
GRANT INSERT, UPDATE ON chat.users, chat.conversations, chat.members, chat.media, chat.messages,
    chat.send_dedup, chat.receipts, chat.presence_events TO chatstore_app;
GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA chat TO chatstore_batch;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA chat TO chatstore_batch;
REVOKE ALL ON chat.partition_config FROM chatstore_app;
GRANT SELECT ON chat.partition_config TO chatstore_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA chat GRANT SELECT ON TABLES TO chatstore_readonly, chatstore_app, chatstore_batch;
ALTER DEFAULT PRIVILEGES IN SCHEMA chat GRANT INSERT, UPDATE, DELETE ON TABLES TO chatstore_batch;
