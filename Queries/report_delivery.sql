-- Report: per day, receipts still undelivered (by the message's day), redelivery attempts
-- scheduled, and dead letters by reason (by the day they died).
-- By hand: psql -v from="'2026-11-01'" -v to="'2026-12-01'" -f Queries/report_delivery.sql
WITH days AS (SELECT d::date AS day FROM generate_series(:'from'::date, :'to'::date - 1, interval '1 day') d)
SELECT d.day::text AS day,
       (SELECT count(*) FROM chat.receipts r WHERE r.sent_at >= d.day AND r.sent_at < d.day + 1
          AND r.status = 1 AND r.delivered_at IS NULL AND r.read_at IS NULL) AS undelivered,
       (SELECT count(*) FROM chat.delivery_attempts a WHERE a.scheduled_at >= d.day AND a.scheduled_at < d.day + 1) AS attempts,
       (SELECT count(*) FROM chat.dead_letters x WHERE x.dead_at >= d.day AND x.dead_at < d.day + 1 AND x.reason = 'expired') AS expired,
       (SELECT count(*) FROM chat.dead_letters x WHERE x.dead_at >= d.day AND x.dead_at < d.day + 1 AND x.reason = 'poison') AS poison
FROM days d ORDER BY d.day
