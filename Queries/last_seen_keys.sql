-- The receipt cells (sent day, bucket: a range of conversation ids and a window of the day, as
-- in Queries/last_seen_cells.sql) the last-seen rollup must recount: every cell holding a receipt written since the previous run's snapshot (:'prev',
-- :'prev_xmin'), in commit order, whatever its timestamps, and every cell of a receipt the audit
-- deleted or changed (its old key, from chat.receipt_repairs). Recounted cells are compared with
-- chat.last_seen_cells (Queries/last_seen_cells_diff.sql).
--
-- By hand: psql -v prev="'1234:1240:1236'" -v prev_xmin=1234 -v shift=0 -v wbits=6 -f Queries/last_seen_keys.sql
SELECT sent_day::timestamptz AS sent_day, bucket FROM (
    SELECT (sent_at AT TIME ZONE 'UTC')::date AS sent_day, ((conversation_id >> :'shift'::int) << :'wbits'::int) | ((date_part('epoch', (sent_at AT TIME ZONE 'UTC')::time) * 1000000)::bigint / (86400000000 >> :'wbits'::int)) AS bucket FROM chat.receipts
    WHERE change_xid >= :'prev_xmin'::bigint AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot)
    UNION
    SELECT (receipt_sent_at AT TIME ZONE 'UTC')::date, ((conversation_id >> :'shift'::int) << :'wbits'::int) | ((date_part('epoch', (receipt_sent_at AT TIME ZONE 'UTC')::time) * 1000000)::bigint / (86400000000 >> :'wbits'::int)) FROM chat.receipt_repairs
    WHERE receipt_sent_at IS NOT NULL
      AND change_xid >= :'prev_xmin'::bigint AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot)
) k
ORDER BY 1, 2
