-- Last-seen rollup for the days in [from, to) (UTC dates): daily activity per user, the daily
-- summary (daily active users, sessions, time online, messages), and each user's last-seen time.
-- Recomputes whole days, so running a day twice gives the same rows.
-- Receipts are read from partitions of messages sent up to 3 days before `from` (late deliveries
-- and reads of older messages are counted on the day they happened only within that lookback).
--
-- By hand (in a transaction): psql -1 -v from="'2026-11-28'" -v to="'2026-11-29'" -f Queries/last_seen.sql

DELETE FROM chat.daily_activity WHERE day >= :'from'::date AND day < :'to'::date;

INSERT INTO chat.daily_activity (user_id, day, messages_sent, receipts_delivered, messages_read, sessions, seconds_online)
SELECT user_id, day, sum(sent), sum(delivered), sum(read_n), sum(sessions), sum(secs)
FROM (
    SELECT sender_id AS user_id, (sent_at AT TIME ZONE 'UTC')::date AS day, count(*) AS sent, 0 AS delivered, 0 AS read_n, 0 AS sessions, 0 AS secs
    FROM chat.messages
    WHERE sent_at >= :'from'::date::timestamptz AND sent_at < :'to'::date::timestamptz
    GROUP BY 1, 2
    UNION ALL
    SELECT recipient_id, (delivered_at AT TIME ZONE 'UTC')::date, 0, count(*), 0, 0, 0
    FROM chat.receipts
    WHERE sent_at >= :'from'::date::timestamptz - interval '3 days' AND sent_at < :'to'::date::timestamptz
      AND delivered_at >= :'from'::date::timestamptz AND delivered_at < :'to'::date::timestamptz
    GROUP BY 1, 2
    UNION ALL
    SELECT recipient_id, (read_at AT TIME ZONE 'UTC')::date, 0, 0, count(*), 0, 0
    FROM chat.receipts
    WHERE sent_at >= :'from'::date::timestamptz - interval '3 days' AND sent_at < :'to'::date::timestamptz
      AND read_at >= :'from'::date::timestamptz AND read_at < :'to'::date::timestamptz
    GROUP BY 1, 2
    UNION ALL
    SELECT user_id, (occurred_at AT TIME ZONE 'UTC')::date, 0, 0, 0, count(*),
           sum(extract(epoch FROM next_at - occurred_at))::bigint
    FROM (SELECT user_id, occurred_at, state,
                 lead(occurred_at) OVER w AS next_at, lead(state) OVER w AS next_state
          FROM chat.presence_events
          WHERE occurred_at >= :'from'::date::timestamptz AND occurred_at < :'to'::date::timestamptz
          WINDOW w AS (PARTITION BY user_id, device_id ORDER BY occurred_at)) s
    WHERE state = 'online' AND next_state = 'offline'
    GROUP BY 1, 2
) x
GROUP BY user_id, day;

DELETE FROM chat.daily_summary WHERE day >= :'from'::date AND day < :'to'::date;

INSERT INTO chat.daily_summary (day, active_users, sessions, seconds_online, messages)
SELECT day, count(*), sum(sessions), sum(seconds_online), sum(messages_sent)
FROM chat.daily_activity
WHERE day >= :'from'::date AND day < :'to'::date
GROUP BY day;

INSERT INTO chat.user_last_seen AS s (user_id, last_seen_at, source, updated_at)
SELECT user_id, max(t), (array_agg(src ORDER BY t DESC))[1], now()
FROM (
    SELECT user_id, max(occurred_at) AS t, 'presence' AS src FROM chat.presence_events
    WHERE occurred_at >= :'from'::date::timestamptz AND occurred_at < :'to'::date::timestamptz GROUP BY 1
    UNION ALL
    SELECT sender_id, max(sent_at), 'sent' FROM chat.messages
    WHERE sent_at >= :'from'::date::timestamptz AND sent_at < :'to'::date::timestamptz GROUP BY 1
    UNION ALL
    SELECT recipient_id, max(read_at), 'read' FROM chat.receipts
    WHERE sent_at >= :'from'::date::timestamptz - interval '3 days' AND sent_at < :'to'::date::timestamptz
      AND read_at >= :'from'::date::timestamptz AND read_at < :'to'::date::timestamptz GROUP BY 1
) x
GROUP BY user_id
ON CONFLICT (user_id) DO UPDATE
   SET last_seen_at = EXCLUDED.last_seen_at, source = EXCLUDED.source, updated_at = now()
 WHERE EXCLUDED.last_seen_at > s.last_seen_at;
