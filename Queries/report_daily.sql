-- Report: one UTC day [:'day', :'day' + 1): messages by kind, new conversations, daily active
-- users (from the last-seen rollup), and delivery and read latency percentiles in seconds.
--
-- One day per statement (Report.swift runs it for each day of the report): each part reads one
-- day's partition, with constant bounds the planner prunes by, and the percentiles sort one
-- day's receipts, so the statement's memory and temporary files are those of one day whatever
-- the number of days asked for (a grouped query over 30 days sorted every receipt of the month
-- by day first: 7.5 GB of temporary files at a million messages a day). Plain aggregates over
-- uncorrelated subqueries, which Citus plans one by one.
--
-- By hand: psql -v day="'2026-11-01'" -f Queries/report_daily.sql
SELECT (:'day'::date)::text AS day, m.text, m.media, m.system,
       c.n AS new_conversations, coalesce(s.active_users, 0) AS active_users,
       l.delivered[1] AS delivered_p50, l.delivered[2] AS delivered_p90, l.delivered[3] AS delivered_p99,
       l.read[1] AS read_p50, l.read[2] AS read_p90, l.read[3] AS read_p99
FROM (SELECT count(*) FILTER (WHERE kind = 'text') AS text, count(*) FILTER (WHERE kind = 'media') AS media,
             count(*) FILTER (WHERE kind = 'system') AS system
      FROM chat.messages
      WHERE sent_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND sent_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC') m
CROSS JOIN (SELECT count(*) AS n FROM chat.conversations
            WHERE created_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND created_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC') c
CROSS JOIN (SELECT percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - sent_at))
                       FILTER (WHERE delivered_at >= sent_at) AS delivered,
                   percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM read_at - delivered_at))
                       FILTER (WHERE read_at >= delivered_at) AS read
            FROM chat.receipts
            WHERE sent_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND sent_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC') l
LEFT JOIN (SELECT active_users FROM chat.daily_summary WHERE day = :'day'::date) s ON true
