-- Report: the conversations with the most unread messages (summed over members).
-- By hand: psql -f Queries/report_top_unread.sql
SELECT c.conversation_id, c.kind, coalesce(c.title, '') AS title, sum(u.unread) AS unread, count(*) FILTER (WHERE u.unread > 0) AS members_with_unread
FROM chat.unread_counts u JOIN chat.conversations c USING (conversation_id)
GROUP BY c.conversation_id, c.kind, c.title HAVING sum(u.unread) > 0
ORDER BY unread DESC, c.conversation_id LIMIT 10
