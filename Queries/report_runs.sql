-- Report: every recorded job run in [from, to): job, start, duration, status, and its stats.
-- By hand: psql -v from="'2026-11-01'" -v to="'2026-12-01'" -f Queries/report_runs.sql
SELECT run_id, job, started_at, extract(epoch FROM finished_at - started_at)::float8 AS seconds, status, stats::text AS stats
FROM chat.job_runs
WHERE started_at >= (:'from'::date)::timestamp AT TIME ZONE 'UTC' AND started_at < (:'to'::date + 1)::timestamp AT TIME ZONE 'UTC'
ORDER BY run_id
