import ChatStorePostgres
import Foundation

/// The SQL of an ingest: staging tables, the statements that apply them, and how events become
/// COPY rows.
extension IngestWorker {
    /// Staging tables empty themselves at each batch's commit (`ON COMMIT DELETE ROWS` truncates
    /// in place); in strict mode (one transaction for everything) they are truncated between batches.
    func createStaging() throws {
        try conn.executeScript(IngestWorker.stagingTables)
    }

    static let stagingTables = """
            CREATE TEMP TABLE IF NOT EXISTS ingest_users (user_id bigint, handle text, display_name text, created_at timestamptz) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS ingest_conversations (conversation_id bigint, kind text, title text, created_by bigint, created_at timestamptz) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS ingest_joins (conversation_id bigint, user_id bigint, at timestamptz, role text) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS ingest_leaves (conversation_id bigint, user_id bigint, at timestamptz) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS ingest_messages (conversation_id bigint, message_id bigint, sent_at timestamptz, sender_id bigint,
                kind text, body text, reply_to_id bigint, client_message_id text, media_sha256 bytea, edited_at timestamptz, deleted_at timestamptz) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS ingest_receipts (conversation_id bigint, message_id bigint, sent_at timestamptz, recipient_id bigint,
                delivered_at timestamptz, read_at timestamptz) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS ingest_presence (user_id bigint, occurred_at timestamptz, device_id text, state text) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS ingest_media (conversation_id bigint, sha256 bytea, size_bytes bigint, mime_type text, file_name text, bytes bytea) ON COMMIT DELETE ROWS;
            """

    /// A message event as a row of `ingest_messages` or `chat.messages` (same columns).
    static func encodeMessage(_ e: Event, _ w: inout CopyInWriter) -> Bool {
        guard case .message(let cv, let id, let s, let t, let k, let body, let reply, let cid, let media, let ed, let del) = e else { return false }
        w.append(cv); w.append(id); w.appendTimestamp(microseconds: t); w.append(s); w.append(k); w.append(body); w.append(reply); w.append(cid)
        if let media { w.appendBytea(media) } else { w.appendNull() }
        w.appendTimestamp(microseconds: ed); w.appendTimestamp(microseconds: del); return true
    }

    /// A presence event as a row of `ingest_presence` or `chat.presence_events` (same columns).
    static func encodePresence(_ e: Event, _ w: inout CopyInWriter) -> Bool {
        guard case .presence(let u, let at, let st, let dev) = e else { return false }
        w.append(u); w.appendTimestamp(microseconds: at); w.append(dev); w.append(st); return true
    }

    /// Applies the staged users, conversations, media, joins and leaves, in that order (each
    /// statement runs only when its staging table got rows).
    static let applyStaged: [(slot: Int, sql: String)] = [
        (Slot.user, """
            INSERT INTO chat.users (user_id, handle, display_name, created_at)
            SELECT DISTINCT ON (user_id) user_id, handle, display_name, coalesce(created_at, now()) FROM ingest_users ORDER BY user_id
            ON CONFLICT DO NOTHING
            """),
        (Slot.conversation, """
            INSERT INTO chat.conversations (conversation_id, kind, title, created_by, created_at, member_limit)
            SELECT DISTINCT ON (conversation_id) conversation_id, kind, title, created_by, coalesce(created_at, now()),
                   CASE WHEN kind = 'direct' THEN 2 ELSE 1024 END
            FROM ingest_conversations ORDER BY conversation_id
            ON CONFLICT DO NOTHING
            """),
        (Slot.media, """
            INSERT INTO chat.media (conversation_id, sha256, size_bytes, mime_type, file_name, encoding, bytes)
            SELECT DISTINCT ON (conversation_id, sha256) conversation_id, sha256, size_bytes, mime_type, file_name, 'none', bytes
            FROM ingest_media ORDER BY conversation_id, sha256
            ON CONFLICT DO NOTHING
            """),
        (Slot.join, """
            INSERT INTO chat.members (conversation_id, user_id, joined_at, role)
            SELECT conversation_id, user_id, at, role FROM ingest_joins j
            WHERE NOT EXISTS (SELECT 1 FROM chat.members m WHERE m.conversation_id = j.conversation_id AND m.user_id = j.user_id AND m.left_at IS NULL AND m.joined_at <= j.at)
            ON CONFLICT DO NOTHING
            """),
        (Slot.leave, """
            UPDATE chat.members m SET left_at = l.at, change_xid = DEFAULT
            FROM (SELECT conversation_id, user_id, min(at) AS at FROM ingest_leaves GROUP BY 1, 2) l
            WHERE m.conversation_id = l.conversation_id AND m.user_id = l.user_id AND m.left_at IS NULL AND m.joined_at <= l.at
            """),
    ]

    /// The staged messages' send dedup keys (the first message of each client id wins).
    static let insertSendDedup = """
            INSERT INTO chat.send_dedup (conversation_id, sender_id, client_message_id, message_id, sent_at)
            SELECT DISTINCT ON (conversation_id, sender_id, client_message_id) conversation_id, sender_id, client_message_id, message_id, sent_at
            FROM ingest_messages WHERE client_message_id IS NOT NULL
            ORDER BY conversation_id, sender_id, client_message_id, sent_at, message_id
            ON CONFLICT DO NOTHING;
            """

    /// The staged messages not already stored (nor a resend under a stored client id); returns
    /// the keys of those inserted.
    static let insertMessages = """
            INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at, deleted_at)
            SELECT i.conversation_id, i.message_id, i.sent_at, i.sender_id, i.kind, i.body, i.reply_to_id, i.client_message_id, i.media_sha256, i.edited_at, i.deleted_at
            FROM ingest_messages i
            WHERE i.client_message_id IS NULL OR EXISTS (
                SELECT 1 FROM chat.send_dedup d WHERE d.conversation_id = i.conversation_id AND d.sender_id = i.sender_id
                  AND d.client_message_id = i.client_message_id AND d.message_id = i.message_id)
            ON CONFLICT DO NOTHING
            RETURNING conversation_id, message_id
            """

    /// `insertMessages` for Citus, which refuses a correlated subquery from a temporary table
    /// into a distributed one: the stored dedup keys of the staged client ids are read first (on
    /// the shards, by the list of keys), then compared on the coordinator. (Plain PostgreSQL
    /// keeps the correlated form: an index probe per staged message, whatever send_dedup's size.)
    static let insertMessagesCitus = """
            WITH known AS MATERIALIZED (
                SELECT d.conversation_id, d.sender_id, d.client_message_id, d.message_id FROM chat.send_dedup d
                WHERE (d.conversation_id, d.sender_id, d.client_message_id) IN (
                    SELECT conversation_id, sender_id, client_message_id FROM ingest_messages WHERE client_message_id IS NOT NULL))
            INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at, deleted_at)
            SELECT i.conversation_id, i.message_id, i.sent_at, i.sender_id, i.kind, i.body, i.reply_to_id, i.client_message_id, i.media_sha256, i.edited_at, i.deleted_at
            FROM ingest_messages i
            WHERE i.client_message_id IS NULL OR EXISTS (
                SELECT 1 FROM known d WHERE d.conversation_id = i.conversation_id AND d.sender_id = i.sender_id
                  AND d.client_message_id = i.client_message_id AND d.message_id = i.message_id)
            ON CONFLICT DO NOTHING
            RETURNING conversation_id, message_id
            """

    /// The joins of `applyStaged` for Citus: the open memberships of the staged pairs are read
    /// first (on the shards), then compared on the coordinator.
    static let applyJoinsCitus = """
            WITH open AS MATERIALIZED (
                SELECT m.conversation_id, m.user_id, m.joined_at FROM chat.members m
                WHERE m.left_at IS NULL AND (m.conversation_id, m.user_id) IN (SELECT conversation_id, user_id FROM ingest_joins))
            INSERT INTO chat.members (conversation_id, user_id, joined_at, role)
            SELECT conversation_id, user_id, at, role FROM ingest_joins j
            WHERE NOT EXISTS (SELECT 1 FROM open m WHERE m.conversation_id = j.conversation_id AND m.user_id = j.user_id AND m.joined_at <= j.at)
            ON CONFLICT DO NOTHING
            """

    /// Staged receipts (one row per receipt, merged by the client) that may already exist: a
    /// receipt never moves backwards, and only a change rewrites the row. (`least` skips NULLs:
    /// the earliest known time wins. The update takes only immutable expressions and EXCLUDED
    /// values, which Citus requires of `DO UPDATE SET`.)
    static let upsertReceipts = """
            INSERT INTO chat.receipts AS r (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at)
            SELECT conversation_id, message_id, sent_at, recipient_id, CASE WHEN read_at IS NULL THEN 2 ELSE 3 END, delivered_at, read_at, now()
            FROM ingest_receipts
            ON CONFLICT (conversation_id, message_id, recipient_id, sent_at) DO UPDATE
               SET status = greatest(r.status, EXCLUDED.status),
                   delivered_at = least(r.delivered_at, EXCLUDED.delivered_at),
                   read_at = least(r.read_at, EXCLUDED.read_at),
                   updated_at = EXCLUDED.updated_at, change_xid = EXCLUDED.change_xid
             WHERE r.status < EXCLUDED.status
                OR (EXCLUDED.delivered_at IS NOT NULL AND (r.delivered_at IS NULL OR EXCLUDED.delivered_at < r.delivered_at))
                OR (EXCLUDED.read_at IS NOT NULL AND (r.read_at IS NULL OR EXCLUDED.read_at < r.read_at));
            """

    static let applyPresence = """
            INSERT INTO chat.presence_events (user_id, occurred_at, device_id, state)
            SELECT DISTINCT ON (user_id, occurred_at, device_id) user_id, occurred_at, device_id, state FROM ingest_presence
            ORDER BY user_id, occurred_at, device_id
            ON CONFLICT DO NOTHING;
            """
}
