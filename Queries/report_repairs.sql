-- Report: what receipt repair changed, per run and category.
-- By hand: psql -f Queries/report_repairs.sql
SELECT run_id, category, action, count(*) AS changes FROM chat.receipt_repairs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
