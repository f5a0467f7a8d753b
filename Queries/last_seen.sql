-- Last-seen rollup of one UTC day (the variable day, a date): daily activity per user, the daily summary,
-- and each user's last-seen time (docs/jobs.md, "Last seen and daily activity"). Recomputes the
-- whole day, so running it twice gives the same rows. `chatstore jobs last-seen` runs it for
-- every day touched by a row written since its last run (in commit order), whatever the age of
-- the message: a read today of a message sent last month counts today.
--
-- Activity on a day:
--   messages_sent       messages whose sent_at is on the day
--   receipts_delivered  receipts whose delivered_at is on the day (messages of any age)
--   messages_read       receipts whose read_at is on the day (messages of any age)
--   sessions            presence sessions overlapping the day (one crossing midnight counts on both)
--   seconds_online      the day's share of those sessions, summed over devices
-- Sessions, per (user, device), from the events in time order: an online starts a session
-- unless the event before it is an online of the same day (a repeated online keeps the first
-- start). Each online counts until the next event of the device; an online that is not followed
-- by an offline before the end of the next day, or is followed by another online on a later
-- day, counts only to the end of its own day. Every session is split at midnight UTC.
-- A user is active on a day (daily_summary.active_users) when they sent, read or were online;
-- a delivery alone (the device received in the background) is not activity. Last seen is the
-- latest presence event, send or read, and never moves back.
--
-- keep_presence = true for a day whose raw presence was dropped by retention: its sessions
-- and time online are kept from the rows already rolled up.
--
-- By hand (in a transaction): psql -1 -v day="'2026-11-28'" -v keep_presence=false -f Queries/last_seen.sql

DROP TABLE IF EXISTS pg_temp.last_seen_presence;

CREATE TEMP TABLE last_seen_presence ON COMMIT DROP AS
WITH ev AS (
    SELECT user_id, device_id, occurred_at, state,
           lag(state) OVER w AS prev_state, lag(occurred_at) OVER w AS prev_at,
           lead(occurred_at) OVER w AS next_at, lead(state) OVER w AS next_state
    FROM chat.presence_events
    WHERE occurred_at >= (:'day'::date - 1)::timestamp AT TIME ZONE 'UTC'
      AND occurred_at < (:'day'::date + 2)::timestamp AT TIME ZONE 'UTC'
    WINDOW w AS (PARTITION BY user_id, device_id ORDER BY occurred_at)
), seg AS (
    SELECT user_id, device_id, occurred_at AS s,
           CASE WHEN next_state = 'offline' AND next_at < date_trunc('day', occurred_at, 'UTC') + interval '2 days' THEN next_at
                WHEN next_at IS NOT NULL AND next_at < date_trunc('day', occurred_at, 'UTC') + interval '1 day' THEN next_at
                ELSE date_trunc('day', occurred_at, 'UTC') + interval '1 day' END AS e,
           sum(CASE WHEN prev_state = 'online' AND date_trunc('day', prev_at, 'UTC') = date_trunc('day', occurred_at, 'UTC')
                    THEN 0 ELSE 1 END) OVER (PARTITION BY user_id, device_id ORDER BY occurred_at) AS session
    FROM ev
    WHERE state = 'online'
)
SELECT user_id,
       count(DISTINCT (device_id, session)) AS sessions,
       sum(extract(epoch FROM least(e, (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC') - greatest(s, (:'day'::date)::timestamp AT TIME ZONE 'UTC')))::bigint AS secs
FROM seg
WHERE s < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC' AND e > (:'day'::date)::timestamp AT TIME ZONE 'UTC'
  AND :'keep_presence'::boolean IS FALSE
GROUP BY user_id
UNION ALL
SELECT user_id, sessions, seconds_online FROM chat.daily_activity
WHERE day = :'day'::date AND :'keep_presence'::boolean AND sessions > 0;

DELETE FROM chat.daily_activity WHERE day = :'day'::date;

INSERT INTO chat.daily_activity (user_id, day, messages_sent, receipts_delivered, messages_read, sessions, seconds_online)
SELECT user_id, :'day'::date, sum(sent), sum(delivered), sum(read_n), sum(sessions), sum(secs)
FROM (
    SELECT sender_id AS user_id, count(*) AS sent, 0 AS delivered, 0 AS read_n, 0 AS sessions, 0 AS secs
    FROM chat.messages
    WHERE sent_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND sent_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY 1
    UNION ALL
    SELECT recipient_id, 0, count(*), 0, 0, 0
    FROM chat.receipts
    WHERE delivered_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND delivered_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY 1
    UNION ALL
    SELECT recipient_id, 0, 0, count(*), 0, 0
    FROM chat.receipts
    WHERE read_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND read_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY 1
    UNION ALL
    SELECT user_id, 0, 0, 0, sessions, secs FROM pg_temp.last_seen_presence
) x
GROUP BY user_id;

DELETE FROM chat.daily_summary WHERE day = :'day'::date;

INSERT INTO chat.daily_summary (day, active_users, sessions, seconds_online, messages)
SELECT :'day'::date, count(*) FILTER (WHERE messages_sent > 0 OR messages_read > 0 OR sessions > 0),
       coalesce(sum(sessions), 0), coalesce(sum(seconds_online), 0), coalesce(sum(messages_sent), 0)
FROM chat.daily_activity
WHERE day = :'day'::date
HAVING count(*) > 0;

INSERT INTO chat.user_last_seen AS s (user_id, last_seen_at, source, updated_at)
SELECT user_id, max(t), (array_agg(src ORDER BY t DESC, src))[1], now()
FROM (
    SELECT user_id, max(occurred_at) AS t, 'presence' AS src FROM chat.presence_events
    WHERE occurred_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND occurred_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC' GROUP BY 1
    UNION ALL
    SELECT sender_id, max(sent_at), 'sent' FROM chat.messages
    WHERE sent_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND sent_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC' GROUP BY 1
    UNION ALL
    SELECT recipient_id, max(read_at), 'read' FROM chat.receipts
    WHERE read_at >= (:'day'::date)::timestamp AT TIME ZONE 'UTC' AND read_at < (:'day'::date + 1)::timestamp AT TIME ZONE 'UTC' GROUP BY 1
) x
GROUP BY user_id
ON CONFLICT (user_id) DO UPDATE
   SET last_seen_at = EXCLUDED.last_seen_at, source = EXCLUDED.source, updated_at = EXCLUDED.updated_at
 WHERE EXCLUDED.last_seen_at > s.last_seen_at;
