-- Report: one UTC day [:'day', :'day' + 1): receipts still undelivered (by the message's day),
-- redelivery attempts scheduled, and dead letters by reason (by the day they died).
--
-- One day per statement (Report.swift runs it for each day of the report), each count with
-- constant bounds, so only that day's partitions are read (a join of a list of days to the
-- receipts planned a scan of the month's receipts against the list). Uncorrelated aggregate
-- subqueries, which Citus plans one by one (it refuses per-day correlated subqueries).
--
-- By hand: psql -v day="'2026-11-01'" -f Queries/report_delivery.sql
SELECT (:'day'::date)::text AS day, u.n AS undelivered, a.n AS attempts, x.expired, x.poison
FROM (SELECT count(*) AS n FROM chat.receipts
      WHERE sent_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND sent_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC'
        AND status = 1 AND delivered_at IS NULL AND read_at IS NULL) u
CROSS JOIN (SELECT count(*) AS n FROM chat.delivery_attempts
            WHERE scheduled_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND scheduled_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC') a
CROSS JOIN (SELECT count(*) FILTER (WHERE reason = 'expired') AS expired, count(*) FILTER (WHERE reason = 'poison') AS poison
            FROM chat.dead_letters
            WHERE dead_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND dead_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC') x
