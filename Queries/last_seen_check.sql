-- Does the rollup of a day (the variable day) still match the day's messages, deliveries and
-- reads? Counts and sums of user ids on both sides; any difference means the day is recomputed
-- (Queries/last_seen.sql). Cheaper than recomputing: one count over the day's messages
-- partition and two BRIN-driven counts over receipts.
--
-- By hand: psql -v day="'2026-11-28'" -f Queries/last_seen_check.sql
SELECT (SELECT row(count(*), coalesce(sum(sender_id), 0)) FROM chat.messages
        WHERE sent_at >= :'day'::date::timestamptz AND sent_at < :'day'::date::timestamptz + interval '1 day')::text
     || (SELECT row(count(*), coalesce(sum(recipient_id), 0)) FROM chat.receipts
         WHERE delivered_at >= :'day'::date::timestamptz AND delivered_at < :'day'::date::timestamptz + interval '1 day')::text
     || (SELECT row(count(*), coalesce(sum(recipient_id), 0)) FROM chat.receipts
         WHERE read_at >= :'day'::date::timestamptz AND read_at < :'day'::date::timestamptz + interval '1 day')::text
     = (SELECT row(coalesce(sum(messages_sent), 0), coalesce(sum(messages_sent::bigint * user_id), 0))::text
            || row(coalesce(sum(receipts_delivered), 0), coalesce(sum(receipts_delivered::bigint * user_id), 0))::text
            || row(coalesce(sum(messages_read), 0), coalesce(sum(messages_read::bigint * user_id), 0))::text
        FROM chat.daily_activity WHERE day = :'day'::date) AS unchanged
