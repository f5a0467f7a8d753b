-- Recounts the receipt cells of one sent day [:'lo', :'hi') and a few buckets (:'buckets', a
-- bigint array) into pg_temp.last_seen_recount, as Queries/last_seen_cells.sql does, but reads
-- each bucket by an index range scan: its range of conversation ids (the receipts' primary key
-- leads with conversation_id), with its window of the day checked on the index entries (sent_at
-- is a key column), so the heap is read only for the window's receipts. A late read of an old
-- message costs the receipts of its cell, not of its day. Plain PostgreSQL only (Citus cannot
-- join a distributed table to an array).
--
-- A bucket b is the conversation ids [(b >> wbits) << shift, ((b >> wbits) + 1) << shift) and
-- the window b & (2^wbits - 1) of the day, (86,400 s >> wbits) long: the receipts whose bucket
-- by the formula of Queries/last_seen_cells.sql is b, exactly.
--
-- By hand (in a transaction): psql -v lo="'2026-11-28'" -v hi="'2026-11-29'" -v shift=0 -v wbits=6 -v buckets="'{17,42}'" -f Queries/last_seen_cells_by_key.sql
INSERT INTO pg_temp.last_seen_recount (sent_day, bucket, kind, day, n, s, h)
SELECT (r.sent_at AT TIME ZONE 'UTC')::date, b.bucket, v.kind, v.day, count(*), sum(r.recipient_id), sum(hashint8(r.recipient_id))
FROM unnest(:'buckets'::bigint[]) b(bucket)
JOIN chat.receipts r
  ON r.conversation_id >= (b.bucket >> :'wbits'::int) << :'shift'::int
 AND r.conversation_id <= ((b.bucket >> :'wbits'::int) << :'shift'::int) | ((1::bigint << :'shift'::int) - 1)
 AND r.sent_at >= :'lo'::timestamptz + (b.bucket & ((1::bigint << :'wbits'::int) - 1)) * (86400000000 >> :'wbits'::int) * interval '1 microsecond'
 AND r.sent_at < :'lo'::timestamptz + ((b.bucket & ((1::bigint << :'wbits'::int) - 1)) + 1) * (86400000000 >> :'wbits'::int) * interval '1 microsecond'
 AND r.sent_at >= :'lo'::timestamptz AND r.sent_at < :'hi'::timestamptz
CROSS JOIN LATERAL (VALUES ('d'::"char", (r.delivered_at AT TIME ZONE 'UTC')::date), ('r'::"char", (r.read_at AT TIME ZONE 'UTC')::date)) v(kind, day)
WHERE v.day IS NOT NULL
GROUP BY 1, 2, 3, 4
