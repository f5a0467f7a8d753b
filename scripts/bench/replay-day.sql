-- Replay the day rewind-day.sql set aside, as application writes (new change_xid). Used by nightly.sh
-- and scale.sh.
INSERT INTO chat.messages SELECT * FROM bench_new_messages;
INSERT INTO chat.receipts SELECT * FROM bench_new_receipts;
INSERT INTO chat.presence_events SELECT * FROM bench_new_presence;
UPDATE chat.receipts r SET status = l.status, delivered_at = l.delivered_at, read_at = l.read_at, updated_at = now(), change_xid = DEFAULT
  FROM bench_later_receipts l
 WHERE r.conversation_id = l.conversation_id AND r.message_id = l.message_id AND r.recipient_id = l.recipient_id AND r.sent_at = l.sent_at;
UPDATE chat.members m SET left_at = l.left_at, change_xid = DEFAULT FROM bench_later_leaves l
 WHERE m.conversation_id = l.conversation_id AND m.user_id = l.user_id AND m.joined_at = l.joined_at;
UPDATE chat.messages m SET deleted_at = l.deleted_at, change_xid = DEFAULT FROM bench_later_deletes l
 WHERE m.conversation_id = l.conversation_id AND m.message_id = l.message_id AND m.sent_at = l.sent_at;
