-- Report: how unread counts are distributed across users (total unread per user, in buckets).
-- By hand: psql -f Queries/report_unread.sql
WITH per_user AS (
    SELECT u.user_id, coalesce(sum(c.unread), 0) AS unread
    FROM chat.users u LEFT JOIN chat.unread_counts c ON c.user_id = u.user_id GROUP BY u.user_id
)
SELECT b.label AS bucket, b.ord, count(p.user_id) AS users
FROM (VALUES (0, '0', 0, 0), (1, '1-5', 1, 5), (2, '6-20', 6, 20), (3, '21-100', 21, 100), (4, '101-500', 101, 500),
             (5, '501+', 501, 2147483647)) AS b(ord, label, lo, hi)
LEFT JOIN per_user p ON p.unread BETWEEN b.lo AND b.hi
GROUP BY b.label, b.ord ORDER BY b.ord
