-- Reconciliation's plan on Citus: the same rows as the third statement of Queries/reconcile.sql
-- (see there for what each action means), for the candidates in pg_temp.reconcile_candidates.
--
-- Citus refuses that statement's LATERAL probes and correlated EXISTS between a temporary table
-- and distributed tables. Here each distributed table is read by one query that runs on the
-- shards, filtered by the candidates' keys (`IN (SELECT ... FROM pg_temp...)`: Citus sends the
-- candidates to the workers once), and the plan is made from those results on the coordinator.
-- Each of the CTEs is MATERIALIZED so that Citus plans it on its own.
--
-- By hand (after the first two statements of Queries/reconcile.sql, in the same transaction):
--   psql -v now="'2026-11-29'" -v max_age=1209600 -v max_attempts=8 -f Queries/reconcile_plan_citus.sql

CREATE TEMP TABLE reconcile_plan ON COMMIT DROP AS
WITH m AS MATERIALIZED (
    SELECT y.conversation_id, y.message_id, y.sent_at FROM chat.messages y
    WHERE y.deleted_at IS NULL
      AND (y.conversation_id, y.message_id, y.sent_at) IN (SELECT conversation_id, message_id, sent_at FROM pg_temp.reconcile_candidates)
), mb AS MATERIALIZED (
    SELECT DISTINCT x.conversation_id, x.user_id FROM chat.members x
    WHERE x.left_at IS NULL
      AND (x.conversation_id, x.user_id) IN (SELECT conversation_id, recipient_id FROM pg_temp.reconcile_candidates)
), d AS MATERIALIZED (
    SELECT d.conversation_id, d.message_id, d.recipient_id, d.redriven_at FROM chat.dead_letters d
    WHERE (d.conversation_id, d.message_id, d.recipient_id) IN (SELECT conversation_id, message_id, recipient_id FROM pg_temp.reconcile_candidates)
), a AS MATERIALIZED (
    SELECT x.conversation_id, x.message_id, x.recipient_id,
           count(*) FILTER (WHERE y.since_redrive AND x.attempted_at IS NOT NULL AND x.outcome = 'failed') AS attempts,
           bool_or(x.attempted_at IS NULL) FILTER (WHERE y.since_redrive) AS pending,
           min(x.attempted_at) FILTER (WHERE y.since_redrive AND x.outcome = 'failed') AS first_failure_at,
           (array_agg(x.error ORDER BY x.attempt DESC) FILTER (WHERE y.since_redrive AND x.outcome = 'failed'))[1] AS last_error,
           max(x.attempt) AS last_attempt
    FROM chat.delivery_attempts x
    LEFT JOIN chat.dead_letters d
      ON d.conversation_id = x.conversation_id AND d.message_id = x.message_id AND d.recipient_id = x.recipient_id
    CROSS JOIN LATERAL (SELECT d.redriven_at IS NULL OR x.attempt > coalesce(d.redrive_after_attempt, 0) AS since_redrive) y
    WHERE (x.conversation_id, x.message_id, x.recipient_id) IN (SELECT conversation_id, message_id, recipient_id FROM pg_temp.reconcile_candidates)
    GROUP BY x.conversation_id, x.message_id, x.recipient_id
)
SELECT c.conversation_id, c.message_id, c.recipient_id, c.sent_at,
       coalesce(a.attempts, 0) AS attempts,
       a.pending,
       a.first_failure_at,
       a.last_error,
       coalesce(a.last_attempt, 0) AS last_attempt,
       CASE
           WHEN c.sent_at < (:'now'::timestamptz AT TIME ZONE 'UTC' - make_interval(secs => :'max_age'::double precision)) AT TIME ZONE 'UTC' THEN 'expired'
           WHEN coalesce(a.attempts, 0) >= :'max_attempts'::integer AND NOT coalesce(a.pending, false) THEN 'poison'
           WHEN coalesce(a.pending, false) THEN 'waiting'
           ELSE 'retry'
       END AS action
FROM pg_temp.reconcile_candidates c
JOIN m ON m.conversation_id = c.conversation_id AND m.message_id = c.message_id AND m.sent_at = c.sent_at
JOIN mb ON mb.conversation_id = c.conversation_id AND mb.user_id = c.recipient_id
LEFT JOIN d ON d.conversation_id = c.conversation_id AND d.message_id = c.message_id AND d.recipient_id = c.recipient_id
LEFT JOIN a ON a.conversation_id = c.conversation_id AND a.message_id = c.message_id AND a.recipient_id = c.recipient_id
WHERE d.message_id IS NULL OR d.redriven_at IS NOT NULL;
