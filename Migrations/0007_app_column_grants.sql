-- Least privilege for the application (docs/schema.md, "Roles"). chatstore_app keeps SELECT and
-- INSERT, and may UPDATE only the columns an application changes after a row is written:
--   users          display_name, handle (a rename), deleted_at (an account deletion)
--   conversations  title, member_limit
--   members        left_at (a leave), role (a promotion), change_xid
--   messages       body, edited_at (an edit), deleted_at (a deletion), change_xid
--   receipts       status, delivered_at, read_at, updated_at, change_xid
-- Media, send_dedup and presence events are written once. Nothing else is updatable: not a
-- message's sent_at (which would move it to another partition), sender or kind, not a receipt's
-- keys. Without table-level UPDATE, DELETE or TRUNCATE, the application can take no table lock
-- stronger than its writes take (ROW EXCLUSIVE): LOCK TABLE ... IN SHARE / EXCLUSIVE /
-- ACCESS EXCLUSIVE MODE is refused with 42501. A status moving backwards (read → sent) is not a
-- privilege matter; the receipt audit reports it as status_behind_times.
REVOKE UPDATE ON chat.users, chat.conversations, chat.members, chat.media, chat.messages,
    chat.send_dedup, chat.receipts, chat.presence_events FROM chatstore_app;
GRANT UPDATE (display_name, handle, deleted_at) ON chat.users TO chatstore_app;
GRANT UPDATE (title, member_limit) ON chat.conversations TO chatstore_app;
GRANT UPDATE (left_at, role, change_xid) ON chat.members TO chatstore_app;
GRANT UPDATE (body, edited_at, deleted_at, change_xid) ON chat.messages TO chatstore_app;
GRANT UPDATE (status, delivered_at, read_at, updated_at, change_xid) ON chat.receipts TO chatstore_app;
