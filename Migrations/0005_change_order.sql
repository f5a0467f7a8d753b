-- Change detection in commit order (docs/jobs.md, "How the jobs find what changed").
--
-- Every row of messages, receipts, members and presence_events carries change_xid: the 64-bit id
-- of the transaction that last wrote it (pg_current_xact_id()). Inserts get it from the column
-- default; a writer that updates a row sets it again (`SET ..., change_xid = DEFAULT`, or
-- `change_xid = EXCLUDED.change_xid` in an upsert). Each job run records the snapshot it ran
-- at (pg_current_snapshot()), so the next run finds every row committed after that snapshot,
-- whatever its timestamps say and however long its transaction stayed open: a row is new to the
-- next run exactly when its transaction is not visible in the recorded snapshot.
--
-- Rows written before this migration keep change_xid NULL: they were all committed before the
-- first run that records a snapshot, and that run is a full one. Adding the columns and their
-- defaults rewrites nothing; the BRIN builds read each partition once under a SHARE lock.

ALTER TABLE chat.messages ADD COLUMN change_xid bigint;
ALTER TABLE chat.messages ALTER COLUMN change_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
ALTER TABLE chat.receipts ADD COLUMN change_xid bigint;
ALTER TABLE chat.receipts ALTER COLUMN change_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
ALTER TABLE chat.members ADD COLUMN change_xid bigint;
ALTER TABLE chat.members ALTER COLUMN change_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
ALTER TABLE chat.presence_events ADD COLUMN change_xid bigint;
ALTER TABLE chat.presence_events ALTER COLUMN change_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
-- The receipt repair's log, so the last-seen rollup recomputes the days a repair took a
-- delivery or read away from.
ALTER TABLE chat.receipt_repairs ADD COLUMN change_xid bigint;
ALTER TABLE chat.receipt_repairs ALTER COLUMN change_xid SET DEFAULT (pg_current_xact_id()::text::bigint);

-- Transaction ids only grow, so the rows a night wrote sit together: a BRIN index finds them
-- in a few pages per partition (members too: rows are mostly appended, joins as they happen).
CREATE INDEX receipts_by_change ON chat.receipts USING brin (change_xid) WITH (pages_per_range = 16);
CREATE INDEX messages_by_change ON chat.messages USING brin (change_xid) WITH (pages_per_range = 16);
CREATE INDEX presence_by_change ON chat.presence_events USING brin (change_xid) WITH (pages_per_range = 16);
CREATE INDEX members_by_change ON chat.members USING brin (change_xid) WITH (pages_per_range = 16);

-- The last-seen rollup recomputes whole days: a day's deliveries and reads of messages of any
-- age are found through these (an update writes its new row version at the end of the
-- message's partition, so a day's reads sit together there too).
CREATE INDEX receipts_by_delivered ON chat.receipts USING brin (delivered_at) WITH (pages_per_range = 16);
CREATE INDEX receipts_by_read ON chat.receipts USING brin (read_at) WITH (pages_per_range = 16);

-- Replaced by the change_xid indexes.
DROP INDEX chat.receipts_changed;
DROP INDEX chat.messages_deleted;

-- The snapshot each job run saw (NULL for runs before this migration and for manual runs over a
-- given window, which do not move the nightly window).
ALTER TABLE chat.job_runs ADD COLUMN snapshot pg_snapshot;

-- The unread messages themselves, one row per (conversation, member, message): what
-- chat.unread_counts counts. Kept so that an incremental run recomputes each changed message
-- exactly (is it unread for this member now?) instead of adding deltas to counts.
CREATE TABLE chat.unread_messages (
    conversation_id  bigint NOT NULL REFERENCES chat.conversations (conversation_id),
    user_id          bigint NOT NULL,
    message_id       bigint NOT NULL,
    sent_at          timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, user_id, message_id, sent_at)
);
-- Retirement removes the unread messages of a range it detaches.
CREATE INDEX unread_messages_by_sent ON chat.unread_messages USING brin (sent_at);

-- Open receipt anomalies, kept by the audit: for the messages a run looked at, what it found
-- replaces what was known. `receipts --repair` works from this table, so it repairs what
-- earlier audits reported without a window.
CREATE TABLE chat.receipt_anomalies (
    conversation_id  bigint NOT NULL REFERENCES chat.conversations (conversation_id),
    message_id       bigint NOT NULL,
    recipient_id     bigint NOT NULL,
    category         text NOT NULL,
    row_count        integer NOT NULL DEFAULT 1,  -- rows of the pair in the category (extra rows for duplicates)
    sent_at          timestamptz NOT NULL,
    found_run_id     bigint NOT NULL,
    PRIMARY KEY (conversation_id, message_id, recipient_id, category)
);

-- One log row per receipt row a repair deleted, changed or added: merging three copies of a
-- receipt logs the kept row's update and both deletions.
ALTER TABLE chat.receipt_repairs ADD COLUMN receipt_sent_at timestamptz;
UPDATE chat.receipt_repairs SET receipt_sent_at = coalesce((old_value->>'sent_at')::timestamptz, (new_value->>'sent_at')::timestamptz, '-infinity');
ALTER TABLE chat.receipt_repairs ALTER COLUMN receipt_sent_at SET NOT NULL;
ALTER TABLE chat.receipt_repairs DROP CONSTRAINT receipt_repairs_pkey;
ALTER TABLE chat.receipt_repairs ADD PRIMARY KEY (conversation_id, run_id, message_id, recipient_id, receipt_sent_at, category, action);

GRANT SELECT ON chat.unread_messages, chat.receipt_anomalies TO chatstore_readonly, chatstore_app, chatstore_batch;
GRANT INSERT, UPDATE, DELETE ON chat.unread_messages, chat.receipt_anomalies TO chatstore_batch;
