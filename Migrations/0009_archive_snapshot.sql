-- The archive ledger records the snapshot each archive was read in (pg_current_snapshot() of the
-- export's one REPEATABLE READ transaction). Retire detaches a range only after it was archived,
-- so a late write to the range between the export and the detach (a read of an old message, a
-- deletion) would otherwise be dropped with the partition: after the detach, a row of the
-- detached tables whose change_xid the snapshot does not see, or a row count that differs from
-- the archive's, means the archive is stale, and retire writes a new one from the detached
-- tables (beside the old one, which it never overwrites) before it drops anything.
-- NULL for archives written before this version: they are treated as stale once restored.
ALTER TABLE chat.archives ADD COLUMN export_snapshot text;
