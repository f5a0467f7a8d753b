-- The UTC days the last-seen rollup must recompute or check: every day touched by a row written
-- since the previous run's snapshot (:'prev', :'prev_xmin'), in commit order, whatever its
-- timestamps: the day a message was sent, and for presence the event's day and the next (a
-- session can run past midnight; the day before is not affected, since an online counts at most
-- to the end of its own day unless an offline closes it, and either way its day's share ends at
-- midnight). Receipts are found by their cells (Queries/last_seen_keys.sql), which also see the
-- day an overwritten time left; only before the cells are built (:'receipts' true: the first run
-- after the migration that added them) are the days a changed receipt was delivered or read on
-- (and the old times of a receipt the audit repaired) taken from the rows.
--
-- By hand: psql -v prev="'1234:1240:1236'" -v prev_xmin=1234 -v receipts=false -f Queries/last_seen_days.sql
SELECT day, bool_or(forced) AS forced FROM (
    SELECT (sent_at AT TIME ZONE 'UTC')::date AS day, false AS forced FROM chat.messages
    WHERE change_xid >= :'prev_xmin'::bigint AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot)
    UNION
    SELECT (unnest(ARRAY[delivered_at, read_at]) AT TIME ZONE 'UTC')::date, false FROM chat.receipts
    WHERE :'receipts'::boolean AND change_xid >= :'prev_xmin'::bigint AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot)
    UNION
    SELECT (unnest(ARRAY[(old_value->>'delivered_at')::timestamptz, (old_value->>'read_at')::timestamptz]) AT TIME ZONE 'UTC')::date, true
    FROM chat.receipt_repairs
    WHERE :'receipts'::boolean AND change_xid >= :'prev_xmin'::bigint AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot)
    UNION
    SELECT d, true FROM chat.presence_events p
    CROSS JOIN LATERAL (VALUES ((p.occurred_at AT TIME ZONE 'UTC')::date), ((p.occurred_at AT TIME ZONE 'UTC')::date + 1)) v(d)
    WHERE p.change_xid >= :'prev_xmin'::bigint AND NOT pg_visible_in_snapshot(p.change_xid::text::xid8, :'prev'::pg_snapshot)
) x
WHERE day IS NOT NULL
GROUP BY day
ORDER BY day
