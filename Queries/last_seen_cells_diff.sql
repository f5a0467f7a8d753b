-- The days whose deliveries or reads moved: the recounted cells (pg_temp.last_seen_recount)
-- against what chat.last_seen_cells holds for the same cells (pg_temp.last_seen_scope: a sent day
-- and a bucket; the sent days recounted whole are :'whole_days', a date array, read by the
-- primary key whatever the history). A receipt that left a day shows
-- there as much as one that arrived; a day is recomputed when its count, sum of recipient ids or
-- sum of their hashes differs.
SELECT day::timestamptz AS day FROM (
    SELECT kind, day, sum(n) AS n, sum(s) AS s, sum(h) AS h FROM (
        SELECT c.kind, c.day, -c.n AS n, -c.s AS s, -c.h AS h FROM chat.last_seen_cells c
        JOIN pg_temp.last_seen_scope k ON k.sent_day = c.sent_day AND k.bucket = c.bucket
        UNION ALL
        SELECT c.kind, c.day, -c.n, -c.s, -c.h FROM chat.last_seen_cells c
        WHERE c.sent_day = ANY(:'whole_days'::date[])
        UNION ALL
        SELECT kind, day, n, s, h FROM pg_temp.last_seen_recount
    ) x
    GROUP BY kind, day
) d
WHERE n <> 0 OR s <> 0 OR h <> 0
GROUP BY day
ORDER BY day
