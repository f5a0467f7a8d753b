-- Report: per day over [from, to): messages by kind, new conversations, daily active users
-- (from the last-seen rollup), and delivery and read latency percentiles in seconds.
-- By hand: psql -v from="'2026-11-01'" -v to="'2026-12-01'" -f Queries/report_daily.sql
WITH days AS (
    SELECT d::date AS day FROM generate_series(:'from'::date, :'to'::date - 1, interval '1 day') d
), msgs AS (
    SELECT (sent_at AT TIME ZONE 'UTC')::date AS day,
           count(*) FILTER (WHERE kind = 'text') AS text, count(*) FILTER (WHERE kind = 'media') AS media,
           count(*) FILTER (WHERE kind = 'system') AS system
    FROM chat.messages WHERE sent_at >= (:'from'::date)::timestamp AT TIME ZONE 'UTC' AND sent_at < (:'to'::date)::timestamp AT TIME ZONE 'UTC' GROUP BY 1
), convs AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM chat.conversations
    WHERE created_at >= (:'from'::date)::timestamp AT TIME ZONE 'UTC' AND created_at < (:'to'::date)::timestamp AT TIME ZONE 'UTC' GROUP BY 1
), lat AS (
    SELECT (sent_at AT TIME ZONE 'UTC')::date AS day,
           percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - sent_at))
               FILTER (WHERE delivered_at >= sent_at) AS delivered,
           percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM read_at - delivered_at))
               FILTER (WHERE read_at >= delivered_at) AS read
    FROM chat.receipts WHERE sent_at >= (:'from'::date)::timestamp AT TIME ZONE 'UTC' AND sent_at < (:'to'::date)::timestamp AT TIME ZONE 'UTC' GROUP BY 1
)
SELECT d.day::text AS day, coalesce(m.text, 0) AS text, coalesce(m.media, 0) AS media, coalesce(m.system, 0) AS system,
       coalesce(c.n, 0) AS new_conversations, coalesce(s.active_users, 0) AS active_users,
       l.delivered[1] AS delivered_p50, l.delivered[2] AS delivered_p90, l.delivered[3] AS delivered_p99,
       l.read[1] AS read_p50, l.read[2] AS read_p90, l.read[3] AS read_p99
FROM days d
LEFT JOIN msgs m USING (day) LEFT JOIN convs c USING (day) LEFT JOIN chat.daily_summary s USING (day) LEFT JOIN lat l USING (day)
ORDER BY d.day
