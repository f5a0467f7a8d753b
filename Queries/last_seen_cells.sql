-- Recounts receipt cells of the sent days [:'lo', :'hi') into pg_temp.last_seen_recount: per
-- (sent day, bucket = conversation_id >> :'shift'), each day's deliveries ('d') and reads ('r')
-- with their count, the sum of recipient ids and the sum of their hashint8 values. With :'all'
-- every bucket of those days, otherwise the buckets in :'buckets' (a bigint array), filtered in
-- one pass over the days' receipts (Queries/last_seen_cells_by_key.sql reads a few buckets by
-- index instead). Compared with chat.last_seen_cells by Queries/last_seen_cells_diff.sql.
--
-- By hand (in a transaction, after creating pg_temp.last_seen_recount as LastSeenCells.swift does):
--   psql -v lo="'2026-11-28'" -v hi="'2026-11-29'" -v shift=0 -v all=true -v buckets="'{}'" -f Queries/last_seen_cells.sql
INSERT INTO pg_temp.last_seen_recount (sent_day, bucket, kind, day, n, s, h)
SELECT (r.sent_at AT TIME ZONE 'UTC')::date, r.conversation_id >> :'shift'::int, 'd', (r.delivered_at AT TIME ZONE 'UTC')::date,
       count(*), sum(r.recipient_id), sum(hashint8(r.recipient_id))
FROM chat.receipts r
WHERE r.sent_at >= (:'lo'::date)::timestamp AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::date)::timestamp AT TIME ZONE 'UTC'
  AND r.delivered_at IS NOT NULL
  AND (:'all'::boolean OR r.conversation_id >> :'shift'::int = ANY(:'buckets'::bigint[]))
GROUP BY 1, 2, 4
UNION ALL
SELECT (r.sent_at AT TIME ZONE 'UTC')::date, r.conversation_id >> :'shift'::int, 'r', (r.read_at AT TIME ZONE 'UTC')::date,
       count(*), sum(r.recipient_id), sum(hashint8(r.recipient_id))
FROM chat.receipts r
WHERE r.sent_at >= (:'lo'::date)::timestamp AT TIME ZONE 'UTC' AND r.sent_at < (:'hi'::date)::timestamp AT TIME ZONE 'UTC'
  AND r.read_at IS NOT NULL
  AND (:'all'::boolean OR r.conversation_id >> :'shift'::int = ANY(:'buckets'::bigint[]))
GROUP BY 1, 2, 4
