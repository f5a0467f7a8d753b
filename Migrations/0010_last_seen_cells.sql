-- What the last-seen rollup last counted, per cell of receipts: a cell is the receipts of one
-- sent day (sent_at's UTC date) in one range of conversation ids (bucket = conversation_id >>
-- bucket_shift), and a row is that cell's contribution to one day's deliveries (kind 'd') or
-- reads ('r'): how many, the sum of the recipient ids and the sum of their hashint8 values.
--
-- Each run recounts only the cells that hold a receipt written since its previous snapshot (in
-- commit order) and compares them with these rows: a day whose totals moved is recomputed. So a
-- receipt whose delivered_at or read_at was overwritten with another day is seen leaving its old
-- day as well as entering the new one, which the new row alone cannot tell, and a late read of an
-- old message costs the recount of one small cell, not of every receipt of the day it was read.
--
-- Derived data, written by `chatstore jobs last-seen` only; built in full by its first run (or
-- the first run after this migration). On Citus both tables stay on the coordinator.
CREATE TABLE chat.last_seen_cells (
    sent_day  date NOT NULL,
    bucket    bigint NOT NULL,
    kind      "char" NOT NULL CHECK (kind IN ('d', 'r')),
    day       date NOT NULL,
    n         bigint NOT NULL,
    s         numeric NOT NULL,
    h         bigint NOT NULL,
    PRIMARY KEY (sent_day, bucket, kind, day)
);

-- One row once the cells are built: the bucket width (a power of two, chosen from the
-- conversation ids present then so there are about 4096 buckets) and when.
CREATE TABLE chat.last_seen_state (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    bucket_shift  integer NOT NULL CHECK (bucket_shift BETWEEN 0 AND 62),
    buckets       bigint NOT NULL,
    built_at      timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT ON chat.last_seen_cells, chat.last_seen_state TO chatstore_readonly, chatstore_batch;
GRANT INSERT, UPDATE, DELETE ON chat.last_seen_cells, chat.last_seen_state TO chatstore_batch;
