-- Members who joined or left since the last run (prev): their rows are recomputed in full (the
-- full query restricted to these pairs) or removed when they left.
--
-- By hand: psql -v prev="'2026-11-28'" -f Queries/unread_pairs.sql
SELECT conversation_id, user_id, bool_and(left_at IS NOT NULL) AS has_left
FROM chat.members
WHERE joined_at > :'prev'::timestamptz OR left_at > :'prev'::timestamptz
GROUP BY conversation_id, user_id
