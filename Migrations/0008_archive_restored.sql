-- The archive ledger records restores: a range that was archived and dropped, then restored by
-- `chatstore archive restore`, is live again. restored_at says so, so `partitions status` does not
-- report the attached partition as a contradiction, and a later retire records the range as
-- retired again (clearing restored_at). Lifecycle per range: live -> archived (verified_at) ->
-- detached (detached_at) -> dropped (dropped_at) -> restored (restored_at) -> archived again ...
ALTER TABLE chat.archives ADD COLUMN restored_at timestamptz;
