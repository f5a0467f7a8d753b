-- Report: per day, receipts still undelivered (by the message's day), redelivery attempts
-- scheduled, and dead letters by reason (by the day they died).
--
-- Each table is counted by one grouped query over the days (a materialized list, which Citus
-- sends to the shards like a reference table, so each count runs there; Citus refuses the
-- per-day correlated subqueries this used to be).
-- By hand: psql -v from="'2026-11-01'" -v to="'2026-12-01'" -f Queries/report_delivery.sql
WITH days AS MATERIALIZED (
    SELECT d::date AS day, d AS lo, d + interval '1 day' AS hi
    FROM generate_series((:'from'::date)::timestamp AT TIME ZONE 'UTC', (:'to'::date - 1)::timestamp AT TIME ZONE 'UTC', interval '1 day') d
), undelivered AS MATERIALIZED (
    SELECT d.day, count(*) AS n FROM days d
    JOIN chat.receipts r ON r.sent_at >= d.lo AND r.sent_at < d.hi
    WHERE r.sent_at >= (:'from'::date)::timestamp AT TIME ZONE 'UTC' AND r.sent_at < (:'to'::date)::timestamp AT TIME ZONE 'UTC'
      AND r.status = 1 AND r.delivered_at IS NULL AND r.read_at IS NULL
    GROUP BY d.day
), attempts AS MATERIALIZED (
    SELECT d.day, count(*) AS n FROM days d
    JOIN chat.delivery_attempts a ON a.scheduled_at >= d.lo AND a.scheduled_at < d.hi
    GROUP BY d.day
), dead AS MATERIALIZED (
    SELECT d.day, count(*) FILTER (WHERE x.reason = 'expired') AS expired, count(*) FILTER (WHERE x.reason = 'poison') AS poison
    FROM days d
    JOIN chat.dead_letters x ON x.dead_at >= d.lo AND x.dead_at < d.hi
    GROUP BY d.day
)
SELECT d.day::text AS day,
       coalesce(u.n, 0) AS undelivered,
       coalesce(a.n, 0) AS attempts,
       coalesce(x.expired, 0) AS expired,
       coalesce(x.poison, 0) AS poison
FROM days d
LEFT JOIN undelivered u ON u.day = d.day
LEFT JOIN attempts a ON a.day = d.day
LEFT JOIN dead x ON x.day = d.day
ORDER BY d.day
