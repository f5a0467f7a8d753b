-- Do the rollups of a run of consecutive days ([lo, hi), dates) still match those days'
-- messages, deliveries and reads? One row per day of the run: counts and sums of user ids on both
-- sides; any difference means the day is recomputed (Queries/last_seen.sql). Cheaper than
-- recomputing: one pass over the run's messages partitions and one BRIN-driven pass over
-- receipts, planned once for the whole run rather than once per day.
--
-- With :'receipts' false (the receipt cells are built, and they find the days whose deliveries or
-- reads moved: Queries/last_seen_cells_diff.sql) only the messages are compared.
--
-- By hand: psql -v lo="'2026-11-28'" -v hi="'2026-11-30'" -v receipts=true -f Queries/last_seen_check.sql
WITH days AS (
    SELECT d::date AS day FROM generate_series(:'lo'::date, :'hi'::date - 1, interval '1 day') d
), m AS (
    SELECT (sent_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n, sum(sender_id) AS s FROM chat.messages
    WHERE sent_at >= (:'lo'::date)::timestamp AT TIME ZONE 'UTC' AND sent_at < (:'hi'::date)::timestamp AT TIME ZONE 'UTC' GROUP BY 1
), rc AS (
    -- Deliveries and reads in one pass (both BRIN indexes, OR-ed), grouped by either day.
    SELECT CASE WHEN delivered_at >= (:'lo'::date)::timestamp AT TIME ZONE 'UTC' AND delivered_at < (:'hi'::date)::timestamp AT TIME ZONE 'UTC'
                THEN (delivered_at AT TIME ZONE 'UTC')::date END AS dday,
           CASE WHEN read_at >= (:'lo'::date)::timestamp AT TIME ZONE 'UTC' AND read_at < (:'hi'::date)::timestamp AT TIME ZONE 'UTC'
                THEN (read_at AT TIME ZONE 'UTC')::date END AS rday,
           recipient_id
    FROM chat.receipts
    WHERE :'receipts'::boolean
      AND ((delivered_at >= (:'lo'::date)::timestamp AT TIME ZONE 'UTC' AND delivered_at < (:'hi'::date)::timestamp AT TIME ZONE 'UTC')
       OR (read_at >= (:'lo'::date)::timestamp AT TIME ZONE 'UTC' AND read_at < (:'hi'::date)::timestamp AT TIME ZONE 'UTC'))
), g AS (
    -- Grouped by the pair of days (a few dozen groups, hashed), then by either day.
    SELECT dday, rday, count(*) AS n, sum(recipient_id) AS s FROM rc GROUP BY dday, rday
), dl AS (
    SELECT dday AS day, sum(n) AS n, sum(s) AS s FROM g WHERE dday IS NOT NULL GROUP BY dday
), rd AS (
    SELECT rday AS day, sum(n) AS n, sum(s) AS s FROM g WHERE rday IS NOT NULL GROUP BY rday
), a AS (
    SELECT day, sum(messages_sent) AS mn, sum(messages_sent::bigint * user_id) AS ms,
           sum(receipts_delivered) AS dn, sum(receipts_delivered::bigint * user_id) AS ds,
           sum(messages_read) AS rn, sum(messages_read::bigint * user_id) AS rs
    FROM chat.daily_activity WHERE day >= :'lo'::date AND day < :'hi'::date GROUP BY day
)
SELECT days.day::timestamptz AS day,
       coalesce(m.n, 0) = coalesce(a.mn, 0) AND coalesce(m.s, 0) = coalesce(a.ms, 0)
   AND (NOT :'receipts'::boolean OR (
       coalesce(dl.n, 0) = coalesce(a.dn, 0) AND coalesce(dl.s, 0) = coalesce(a.ds, 0)
   AND coalesce(rd.n, 0) = coalesce(a.rn, 0) AND coalesce(rd.s, 0) = coalesce(a.rs, 0))) AS unchanged
FROM days
LEFT JOIN m ON m.day = days.day
LEFT JOIN dl ON dl.day = days.day
LEFT JOIN rd ON rd.day = days.day
LEFT JOIN a ON a.day = days.day
ORDER BY days.day
