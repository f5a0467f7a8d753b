-- Reconciliation of undelivered messages, as of :'now'.
--
-- Undelivered: a receipt still at status 1 with no delivered_at or read_at, for a message sent
-- before now - grace that is not deleted, to a recipient who is still a member (an open
-- membership), and not already dead-lettered (or redriven since). Receipts of deleted messages
-- and of recipients who left are skipped. For each (message, recipient), attempts count since
-- the last redrive; then:
--   expired: the message is older than max_age             → dead letter, reason 'expired'
--   poison:  max_attempts attempts have failed              → dead letter, reason 'poison'
--   retry:   no attempt pending                             → schedule attempt n+1 at
--            now + base_seconds * (n+1)^4 (exponential backoff, as Que and River)
--   waiting: an attempt is already pending                  → nothing
-- Receipts delivered since an attempt was scheduled mark its pending attempts 'superseded'.
--
-- Candidates (docs/jobs.md, "Reconcile"):
--   receipts sent since the last run's watermark less the grace period (:'since'; the ones still
--     inside the grace period last time are due now);
--   receipts written since the last run's snapshot (:'prev', :'prev_xmin'), whatever their
--     sent_at: a message inserted late, a backlog;
--   receipts of messages and of memberships written since (an undeleted message, a rejoin);
--   pairs already tracked in delivery_attempts whose latest attempt failed or that expire now.
-- The first run has since = -infinity: every undelivered receipt of the whole history is
-- scheduled, or dead-lettered as expired when older than max_age.
--
-- The first three statements classify (the dry run runs only them): the candidates, then their
-- plan; the others act on the plan. On Citus the plan is made by Queries/reconcile_plan_citus.sql
-- instead of the third statement (Citus refuses its LATERAL probes over a temporary table).
-- By hand: psql -1 -v now="'2026-11-29'" -v since="'2026-11-28'" -v prev="'1:1:'" -v prev_xmin=9223372036854775807 \
--   -v first=true -v pending_until="'-infinity'" -v grace=600 -v max_age=1209600 -v max_attempts=8 -v base_seconds=30 -f Queries/reconcile.sql

CREATE TEMP TABLE reconcile_candidates ON COMMIT DROP AS
WITH candidates AS (
    -- Sent since the last run (less the grace period, so those inside it then are due now).
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at
    FROM chat.receipts r
    WHERE r.sent_at > (:'since'::timestamptz AT TIME ZONE 'UTC' - make_interval(secs => :'grace'::double precision)) AT TIME ZONE 'UTC'
      AND r.sent_at < (:'now'::timestamptz AT TIME ZONE 'UTC' - make_interval(secs => :'grace'::double precision)) AT TIME ZONE 'UTC'
      AND r.status = 1 AND r.delivered_at IS NULL AND r.read_at IS NULL
    UNION
    -- Written since the last run's snapshot, whatever their sent_at.
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at
    FROM chat.receipts r
    WHERE r.change_xid >= :'prev_xmin'::bigint
      AND NOT pg_visible_in_snapshot(r.change_xid::text::xid8, :'prev'::pg_snapshot)
      AND r.sent_at < (:'now'::timestamptz AT TIME ZONE 'UTC' - make_interval(secs => :'grace'::double precision)) AT TIME ZONE 'UTC'
      AND r.status = 1 AND r.delivered_at IS NULL AND r.read_at IS NULL
    UNION
    -- Receipts of messages written since (an undeleted message is due again) and of members
    -- whose membership was written since (a rejoin): skipped before, they may be due now. A
    -- message sent since the watermark has its receipts in the first part already; the older
    -- ones are few. Each is probed by key (LATERAL ... OFFSET 0): a join here was planned as a
    -- nested loop over a scan of every receipts partition (18 s at 70 days).
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at
    FROM chat.messages m
    CROSS JOIN LATERAL (
        SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at FROM chat.receipts r
        WHERE r.conversation_id = m.conversation_id AND r.message_id = m.message_id AND r.sent_at = m.sent_at
          AND r.status = 1 AND r.delivered_at IS NULL AND r.read_at IS NULL
        OFFSET 0) r
    WHERE m.change_xid >= :'prev_xmin'::bigint
      AND NOT pg_visible_in_snapshot(m.change_xid::text::xid8, :'prev'::pg_snapshot)
      AND m.sent_at <= (:'since'::timestamptz AT TIME ZONE 'UTC' - make_interval(secs => :'grace'::double precision)) AT TIME ZONE 'UTC'
    UNION
    SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at
    FROM (SELECT DISTINCT conversation_id, user_id FROM chat.members
          WHERE change_xid >= :'prev_xmin'::bigint
            AND NOT pg_visible_in_snapshot(change_xid::text::xid8, :'prev'::pg_snapshot)) mb
    CROSS JOIN LATERAL (
        SELECT r.conversation_id, r.message_id, r.recipient_id, r.sent_at FROM chat.receipts r
        WHERE r.conversation_id = mb.conversation_id AND r.recipient_id = mb.user_id AND r.status = 1
          AND r.sent_at < (:'now'::timestamptz AT TIME ZONE 'UTC' - make_interval(secs => :'grace'::double precision)) AT TIME ZONE 'UTC'
          AND r.delivered_at IS NULL AND r.read_at IS NULL
        OFFSET 0) r
    UNION
    -- Already tracked: pairs whose latest attempt failed (a retry or poison is due) and pairs
    -- still waiting on a pending attempt that have aged past max_age (expired), unless
    -- dead-lettered; their receipt is probed by its full key (LATERAL ... OFFSET 0: one index
    -- probe in one partition). A pair waiting on a pending attempt is otherwise left alone: its
    -- action stays "waiting" until the worker records an outcome or the receipt changes (a
    -- delivery, found by the parts above and the last statement). Probing every pending pair's
    -- receipt each night was 186 s of a one-day nightly after a month's first run (472,558 pairs).
    SELECT a.conversation_id, a.message_id, a.recipient_id, a.sent_at
    FROM (SELECT DISTINCT ON (conversation_id, message_id, recipient_id)
                 conversation_id, message_id, recipient_id, sent_at, attempted_at, outcome
          FROM chat.delivery_attempts WHERE sent_at IS NOT NULL
          ORDER BY conversation_id, message_id, recipient_id, attempt DESC) a
    CROSS JOIN LATERAL (
        SELECT 1 FROM chat.receipts x
        WHERE x.conversation_id = a.conversation_id AND x.message_id = a.message_id
          AND x.recipient_id = a.recipient_id AND x.sent_at = a.sent_at
          AND x.status = 1 AND x.delivered_at IS NULL AND x.read_at IS NULL
        OFFSET 0) x
    WHERE (a.outcome = 'failed'
           OR (a.attempted_at IS NULL
               AND a.sent_at < (:'now'::timestamptz AT TIME ZONE 'UTC' - make_interval(secs => :'max_age'::double precision)) AT TIME ZONE 'UTC'))
      AND NOT EXISTS (SELECT 1 FROM chat.dead_letters d
                      WHERE d.conversation_id = a.conversation_id AND d.message_id = a.message_id
                        AND d.recipient_id = a.recipient_id AND d.redriven_at IS NULL)
)
SELECT * FROM candidates;
ANALYZE pg_temp.reconcile_candidates;

CREATE TEMP TABLE reconcile_plan ON COMMIT DROP AS
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
-- Every candidate is an undelivered receipt (each part above checks it). LATERAL ... OFFSET 0:
-- each finds its message by the full key (one index probe in one partition); the fence keeps
-- the planner from flattening it into a join that probes every partition by conversation_id.
CROSS JOIN LATERAL (
    SELECT y.deleted_at FROM chat.messages y
    WHERE y.conversation_id = c.conversation_id AND y.message_id = c.message_id AND y.sent_at = c.sent_at OFFSET 0) m
LEFT JOIN chat.dead_letters d
  ON d.conversation_id = c.conversation_id AND d.message_id = c.message_id AND d.recipient_id = c.recipient_id
-- The pair's attempts: those since the last redrive decide; the highest number of all is where
-- the next attempt's number continues (computed here, so that the insert below never scans the
-- table it writes).
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE y.since_redrive AND x.attempted_at IS NOT NULL AND x.outcome = 'failed') AS attempts,
           bool_or(x.attempted_at IS NULL) FILTER (WHERE y.since_redrive) AS pending,
           min(x.attempted_at) FILTER (WHERE y.since_redrive AND x.outcome = 'failed') AS first_failure_at,
           (array_agg(x.error ORDER BY x.attempt DESC) FILTER (WHERE y.since_redrive AND x.outcome = 'failed'))[1] AS last_error,
           max(x.attempt) AS last_attempt
    FROM chat.delivery_attempts x
    CROSS JOIN LATERAL (SELECT d.redriven_at IS NULL OR x.attempt > coalesce(d.redrive_after_attempt, 0) AS since_redrive) y
    WHERE x.conversation_id = c.conversation_id AND x.message_id = c.message_id AND x.recipient_id = c.recipient_id
) a ON true
WHERE m.deleted_at IS NULL
  AND EXISTS (SELECT 1 FROM chat.members mb
              WHERE mb.conversation_id = c.conversation_id AND mb.user_id = c.recipient_id AND mb.left_at IS NULL)
  AND (d.message_id IS NULL OR d.redriven_at IS NOT NULL);

-- Schedule the next attempt (idempotent per message, recipient and attempt number). Its number
-- comes from the plan: a correlated max() over delivery_attempts here was planned against the
-- table as it was before the statement (empty on a first run) and rescanned what the statement
-- had inserted for every retry, quadratic over a month's first run.
INSERT INTO chat.delivery_attempts (conversation_id, message_id, recipient_id, attempt, scheduled_at, sent_at)
SELECT p.conversation_id, p.message_id, p.recipient_id,
       p.last_attempt + 1,
       :'now'::timestamptz + make_interval(secs => :'base_seconds'::double precision * power(p.attempts + 1, 4)), p.sent_at
FROM pg_temp.reconcile_plan p
WHERE p.action = 'retry'
ON CONFLICT DO NOTHING;

-- Dead letters, with the reason, the attempt count and the first failure time.
INSERT INTO chat.dead_letters AS d (conversation_id, message_id, recipient_id, sent_at, reason, attempts, first_failure_at, last_error, dead_at, redriven_at)
SELECT p.conversation_id, p.message_id, p.recipient_id, p.sent_at, p.action, p.attempts,
       coalesce(p.first_failure_at, p.sent_at), p.last_error, :'now'::timestamptz, NULL
FROM pg_temp.reconcile_plan p
WHERE p.action IN ('expired', 'poison')
ON CONFLICT (conversation_id, message_id, recipient_id) DO UPDATE
   SET reason = EXCLUDED.reason, attempts = d.attempts + EXCLUDED.attempts, last_error = coalesce(EXCLUDED.last_error, d.last_error),
       dead_at = EXCLUDED.dead_at, redriven_at = NULL, redrive_after_attempt = NULL;

-- Pending attempts of dead-lettered or delivered receipts will not run.
UPDATE chat.delivery_attempts x SET outcome = 'superseded', attempted_at = :'now'::timestamptz
FROM pg_temp.reconcile_plan p
WHERE p.action IN ('expired', 'poison')
  AND x.conversation_id = p.conversation_id AND x.message_id = p.message_id AND x.recipient_id = p.recipient_id
  AND x.attempted_at IS NULL;

-- Pending attempts whose receipt has been delivered will not run either. The first run (no
-- snapshot yet: :'first') probes every pending attempt's receipt by its full key (LATERAL ...
-- OFFSET 0, as above: a plain join hashes every receipts partition). Later runs look only at the
-- receipts written since the last run's snapshot (in commit order, whatever their times), in the
-- partitions up to the newest pending attempt's sent_at (:'pending_until', read before the run
-- and a constant here, so the new day's partitions are not read): a receipt delivered before that
-- snapshot had its attempts superseded by that run already.
UPDATE chat.delivery_attempts x SET outcome = 'superseded', attempted_at = :'now'::timestamptz
FROM (SELECT a.conversation_id, a.message_id, a.recipient_id, a.attempt
      FROM chat.delivery_attempts a
      CROSS JOIN LATERAL (
          SELECT 1 FROM chat.receipts r
          WHERE r.conversation_id = a.conversation_id AND r.message_id = a.message_id
            AND r.recipient_id = a.recipient_id AND r.sent_at = a.sent_at
            AND (r.status > 1 OR r.delivered_at IS NOT NULL) OFFSET 0) r
      WHERE a.attempted_at IS NULL AND a.sent_at IS NOT NULL AND :'first'::boolean) s
WHERE x.conversation_id = s.conversation_id AND x.message_id = s.message_id
  AND x.recipient_id = s.recipient_id AND x.attempt = s.attempt;

UPDATE chat.delivery_attempts x SET outcome = 'superseded', attempted_at = :'now'::timestamptz
FROM (SELECT DISTINCT r.conversation_id, r.message_id, r.recipient_id, r.sent_at
      FROM chat.receipts r
      WHERE r.change_xid >= :'prev_xmin'::bigint
        AND NOT pg_visible_in_snapshot(r.change_xid::text::xid8, :'prev'::pg_snapshot)
        AND r.sent_at <= :'pending_until'::timestamptz
        AND (r.status > 1 OR r.delivered_at IS NOT NULL)
        AND NOT :'first'::boolean) s
WHERE x.conversation_id = s.conversation_id AND x.message_id = s.message_id
  AND x.recipient_id = s.recipient_id AND x.sent_at = s.sent_at AND x.attempted_at IS NULL;
