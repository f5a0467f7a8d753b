-- Recounts receipt cells of the sent days [:'lo', :'hi') into pg_temp.last_seen_recount: per
-- (sent day, bucket), each day's deliveries ('d') and reads ('r')
-- with their count, the sum of recipient ids and the sum of their hashint8 values. With :'all'
-- every bucket of those days, otherwise the buckets in :'buckets' (a bigint array), filtered in
-- one pass over the days' receipts (Queries/last_seen_cells_by_key.sql reads a few buckets by
-- index instead). Compared with chat.last_seen_cells by Queries/last_seen_cells_diff.sql.
--
-- A receipt's bucket is its range of conversation ids and its window of the day:
--   (conversation_id >> shift) << wbits | (UTC time of day of sent_at, in microseconds) / (86,400 s >> wbits)
-- (Migrations/0011_last_seen_cell_windows.sql; wbits 0 is one window a day). The time of day is
-- taken as a double (date_part, half the cost of extract's numeric per row): below 86,400 s it
-- holds every microsecond exactly, and the cast to bigint rounds to the nearest one.
--
-- By hand (in a transaction, after creating pg_temp.last_seen_recount as LastSeenCells.swift does):
--   psql -v lo="'2026-11-28'" -v hi="'2026-11-29'" -v shift=0 -v wbits=6 -v all=true -v buckets="'{}'" -f Queries/last_seen_cells.sql
INSERT INTO pg_temp.last_seen_recount (sent_day, bucket, kind, day, n, s, h)
WITH b AS (
    -- Each receipt with its cell's bucket (the formula above, written once).
    SELECT (r.sent_at AT TIME ZONE 'UTC')::date AS sent_day,
           ((r.conversation_id >> :'shift'::int) << :'wbits'::int) | ((date_part('epoch', (r.sent_at AT TIME ZONE 'UTC')::time) * 1000000)::bigint / (86400000000 >> :'wbits'::int)) AS bucket,
           (r.delivered_at AT TIME ZONE 'UTC')::date AS dday, (r.read_at AT TIME ZONE 'UTC')::date AS rday, r.recipient_id
    FROM chat.receipts r
    WHERE r.sent_at >= :'lo'::timestamptz AND r.sent_at < :'hi'::timestamptz
      AND (r.delivered_at IS NOT NULL OR r.read_at IS NOT NULL)
), g AS (
    -- One pass, grouped by both days (a few groups per cell), then split by kind.
    SELECT sent_day, bucket, dday, rday, count(*) AS n, sum(recipient_id) AS s, sum(hashint8(recipient_id)) AS h
    FROM b
    WHERE :'all'::boolean OR bucket = ANY(:'buckets'::bigint[])
    GROUP BY 1, 2, 3, 4
)
SELECT sent_day, bucket, 'd', dday, sum(n), sum(s), sum(h) FROM g WHERE dday IS NOT NULL GROUP BY sent_day, bucket, dday
UNION ALL
SELECT sent_day, bucket, 'r', rday, sum(n), sum(s), sum(h) FROM g WHERE rday IS NOT NULL GROUP BY sent_day, bucket, rday
