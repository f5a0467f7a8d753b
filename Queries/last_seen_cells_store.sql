-- Replaces the stored cells of pg_temp.last_seen_scope with their recount, in the run's
-- transaction, so chat.last_seen_cells always describes the receipts as of the last run's snapshot.
-- :'whole_days' (a date array) are the sent days recounted whole.
DELETE FROM chat.last_seen_cells c USING pg_temp.last_seen_scope k
WHERE k.sent_day = c.sent_day AND k.bucket = c.bucket;

DELETE FROM chat.last_seen_cells
WHERE sent_day = ANY(:'whole_days'::date[]);

INSERT INTO chat.last_seen_cells (sent_day, bucket, kind, day, n, s, h)
SELECT sent_day, bucket, kind, day, sum(n), sum(s), sum(h) FROM pg_temp.last_seen_recount
GROUP BY sent_day, bucket, kind, day
