import ChatStorePostgres
import Foundation
import Logging

/// One database connection's share of an ingest: looks up what a batch references, rejects what
/// it cannot resolve, stages the rest through COPY into temp tables and applies it with upserts,
/// one transaction per batch. `EventIngester` runs one worker per connection and routes every
/// conversation's events to the same worker, so a worker sees its conversations in file order.
final class IngestWorker: @unchecked Sendable {
    /// A message by conversation and id (no heap allocation, unlike an array key).
    struct MessageKey: Hashable {
        let conversation: Int64
        let message: Int64
        init(_ conversation: Int64, _ message: Int64) {
            self.conversation = conversation
            self.message = message
        }
    }

    let conn: PostgresConnection
    let strict: Bool
    let logger: Logger
    let ranges: [String: [(Int64, Int64)]]
    private var recentMessages: [MessageKey: Int64] = [:]
    private var recentOrder: [MessageKey] = []
    private var recentHead = 0
    private let recentCapacity: Int

    /// A receipt row's full key.
    struct ReceiptKey: Hashable {
        let conversation: Int64
        let message: Int64
        let sentAt: Int64
        let recipient: Int64
    }

    /// What one batch did.
    struct Outcome {
        var accepted = 0
        var byType: [String: Int] = [:]
        var rejects: [(loc: String, line: [UInt8], reason: String)] = []
    }

    /// - Parameter recentCapacity: how many recently ingested messages are remembered for
    ///   receipt lookups (the rest are probed by index).
    init(connection: PostgresConnection, strict: Bool, ranges: [String: [(Int64, Int64)]], recentCapacity: Int, logger: Logger) {
        conn = connection
        self.strict = strict
        self.ranges = ranges
        self.recentCapacity = recentCapacity
        self.logger = logger
    }

    private func rememberMessage(_ key: MessageKey, _ t: Int64) {
        if recentOrder.count < recentCapacity {
            recentOrder.append(key)
        } else {
            recentMessages[recentOrder[recentHead]] = nil
            recentOrder[recentHead] = key
            recentHead = (recentHead + 1) % recentCapacity
        }
        recentMessages[key] = t
    }

    /// Staging tables empty themselves at each batch's commit (`ON COMMIT DELETE ROWS` truncates
    /// in place); in strict mode (one transaction for everything, truncates between batches.
    func createStaging() throws {
        try conn.executeScript("""
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
            """)
    }

    /// Checks a batch's references, stages the good events and applies them, in one transaction.
    /// - Parameter events: the batch, in file order.
    /// - Returns: what was accepted, and the rejected events with their reasons (not yet written).
    func flush(_ events: [EventIngester.Line]) throws -> Outcome {
        var outcome = Outcome()
        guard !events.isEmpty else { return outcome }
        let t0 = Date()
        try conn.transaction { c in
            // What the batch references, looked up in one query per kind.
            var convIDs = Set<Int64>(), userIDs = Set<Int64>(), msgKeys = Set<MessageKey>()
            for e in events {
                switch e.event {
                case .join(let cv, let u, _, _): convIDs.insert(cv); userIDs.insert(u)
                case .leave(let cv, _, _): convIDs.insert(cv)
                case .message(let cv, _, _, _, _, _, _, _, _, _, _): convIDs.insert(cv)
                case .receipt(let cv, let m, _, _, _): convIDs.insert(cv); msgKeys.insert(MessageKey(cv, m))
                case .media(let cv, _, _, _, _, _): convIDs.insert(cv)
                default: break
                }
            }
            var knownConvs = Set<Int64>(), knownUsers = Set<Int64>()
            var knownMessages: [MessageKey: Int64] = [:]
            if !convIDs.isEmpty {
                for r in try c.query("SELECT conversation_id FROM chat.conversations WHERE conversation_id = ANY(\(Array(convIDs)))") {
                    knownConvs.insert(try r.decode(Int64.self, at: 0))
                }
            }
            if !userIDs.isEmpty {
                for r in try c.query("SELECT user_id FROM chat.users WHERE user_id = ANY(\(Array(userIDs)))") { knownUsers.insert(try r.decode(Int64.self, at: 0)) }
            }
            // Receipts mostly follow their messages closely: recently ingested messages are
            // remembered (bounded), and only the rest are looked up, by index probes.
            for k in msgKeys { if let t = recentMessages[k] { knownMessages[k] = t } }
            msgKeys.subtract(knownMessages.keys)
            if !msgKeys.isEmpty {
                try c.execute("SET LOCAL enable_hashjoin = off")
                try c.execute("SET LOCAL enable_mergejoin = off")
                defer { _ = try? c.execute("SET LOCAL enable_hashjoin = on"); _ = try? c.execute("SET LOCAL enable_mergejoin = on") }
                let cvs = msgKeys.map(\.conversation), ms = msgKeys.map(\.message)
                for r in try c.query("""
                    SELECT m.conversation_id, m.message_id, (extract(epoch FROM m.sent_at) * 1000000)::bigint AS us
                    FROM unnest(\(cvs)::bigint[], \(ms)::bigint[]) k(cv, mid)
                    JOIN chat.messages m ON m.conversation_id = k.cv AND m.message_id = k.mid
                    """) {
                    knownMessages[MessageKey(try r.decode(Int64.self, at: 0), try r.decode(Int64.self, at: 1))] = try r.decode(Int64.self, at: 2)
                }
            }
            var accepted: [(String, Event, Int64?)] = []
            for (loc, line, e) in events {
                var reason: String?
                var sentAt: Int64?
                switch e {
                case .user(let id, _, _, _): knownUsers.insert(id)
                case .conversation(let id, _, _, _, _): knownConvs.insert(id)
                case .join(let cv, let u, _, _):
                    if !knownConvs.contains(cv) {
                        reason = "unknown conversation \(cv)"
                    } else if !knownUsers.contains(u) {
                        reason = "unknown user \(u)"
                    }
                case .leave(let cv, _, _), .media(let cv, _, _, _, _, _):
                    if !knownConvs.contains(cv) { reason = "unknown conversation \(cv)" }
                case .message(let cv, let id, _, let t, _, _, _, _, _, _, _):
                    if !knownConvs.contains(cv) { reason = "unknown conversation \(cv)" } else { knownMessages[MessageKey(cv, id)] = t }
                case .receipt(let cv, let m, _, let at, _):
                    if !knownConvs.contains(cv) { reason = "unknown conversation \(cv)" } else if let t = knownMessages[MessageKey(cv, m)] {
                        sentAt = t
                        if !ranges["receipts"]!.contains(where: { $0.0 <= t && t < $0.1 }) { reason = "the message's time is outside every receipts partition" }
                        if at < t { logger.debug("\(loc): receipt time before the message was sent (kept; the receipt audit reports it)") }
                    } else { reason = "receipt for unknown message \(cv):\(m)" }
                case .presence: break
                }
                if let reason {
                    outcome.rejects.append((loc, line, reason))
                    if strict { return }  // the caller reports the first bad line and rolls back
                } else {
                    accepted.append((loc, e, sentAt))
                }
            }
            let t1 = Date()
            for (_, e, _) in accepted {
                if case .message(let cv, let id, _, let t, _, _, _, _, _, _, _) = e { rememberMessage(MessageKey(cv, id), t) }
            }
            try stage(c, accepted)
            let t2 = Date()
            try apply(c)
            logger.debug("batch of \(events.count): lookups \(Int(t1.timeIntervalSince(t0) * 1000)) ms, staging \(Int(t2.timeIntervalSince(t1) * 1000)) ms, applying \(Int(Date().timeIntervalSince(t2) * 1000)) ms")
            outcome.accepted += accepted.count
            for a in accepted { outcome.byType[a.1.typeName, default: 0] += 1 }
        }
        return outcome
    }

    private func stage(_ c: PostgresConnection, _ events: [(String, Event, Int64?)]) throws {
        if strict {
            try c.executeScript("""
                TRUNCATE ingest_users, ingest_conversations, ingest_joins, ingest_leaves, ingest_messages, ingest_receipts, ingest_presence, ingest_media
                """)
        }
        // One pass sorts the events by table; each COPY then reads only its own.
        var buckets = Array(repeating: [Int](), count: 8)
        for (i, a) in events.enumerated() {
            let slot: Int
            switch a.1 {
            case .user: slot = 0
            case .conversation: slot = 1
            case .join: slot = 2
            case .leave: slot = 3
            case .media: slot = 4
            case .message: slot = 5
            case .receipt: slot = 6
            case .presence: slot = 7
            }
            buckets[slot].append(i)
        }
        func copy(_ table: String, _ slot: Int, _ filter: (Event, Int64?, inout CopyInWriter) throws -> Bool) throws {
            let rows = buckets[slot]
            guard !rows.isEmpty else { return }
            try c.copyIn(SQL(unsafeRaw: "COPY \(table) FROM STDIN")) { w in
                for i in rows { if try filter(events[i].1, events[i].2, &w) { try w.endRow() } }
            }
        }
        try copy("ingest_users", 0) { e, _, w in
            guard case .user(let id, let h, let d, let t) = e else { return false }
            w.append(id); w.append(h); w.append(d); w.appendTimestamp(microseconds: t); return true
        }
        try copy("ingest_conversations", 1) { e, _, w in
            guard case .conversation(let id, let k, let title, let by, let t) = e else { return false }
            w.append(id); w.append(k); w.append(title); w.append(by); w.appendTimestamp(microseconds: t); return true
        }
        try copy("ingest_joins", 2) { e, _, w in
            guard case .join(let cv, let u, let at, let role) = e else { return false }
            w.append(cv); w.append(u); w.appendTimestamp(microseconds: at); w.append(role); return true
        }
        try copy("ingest_leaves", 3) { e, _, w in
            guard case .leave(let cv, let u, let at) = e else { return false }
            w.append(cv); w.append(u); w.appendTimestamp(microseconds: at); return true
        }
        try copy("ingest_media", 4) { e, _, w in
            guard case .media(let cv, let sha, let size, let mime, let name, let data) = e else { return false }
            w.append(cv); w.appendBytea(sha); w.append(size); w.append(mime); w.append(name)
            if let data { w.appendBytea(data) } else { w.appendNull() }
            return true
        }
        try copy("ingest_messages", 5) { e, _, w in
            guard case .message(let cv, let id, let s, let t, let k, let body, let reply, let cid, let media, let ed, let del) = e else { return false }
            w.append(cv); w.append(id); w.appendTimestamp(microseconds: t); w.append(s); w.append(k); w.append(body); w.append(reply); w.append(cid)
            if let media { w.appendBytea(media) } else { w.appendNull() }
            w.appendTimestamp(microseconds: ed); w.appendTimestamp(microseconds: del); return true
        }
        // A batch's delivery and read of the same receipt become one staged row (the earliest of
        // each), so the server stages and groups each receipt once.
        if !buckets[6].isEmpty {
            var merged: [ReceiptKey: (delivered: Int64?, read: Int64?)] = [:]
            merged.reserveCapacity(buckets[6].count)
            var order: [ReceiptKey] = []
            for i in buckets[6] {
                guard case .receipt(let cv, let m, let r, let at, let isRead) = events[i].1, let sentAt = events[i].2 else { continue }
                let k = ReceiptKey(conversation: cv, message: m, sentAt: sentAt, recipient: r)
                var v = merged[k] ?? { order.append(k); return (nil, nil) }()
                if isRead { v.read = min(v.read ?? at, at) } else { v.delivered = min(v.delivered ?? at, at) }
                merged[k] = v
            }
            try c.copyIn("COPY ingest_receipts FROM STDIN") { w in
                for k in order {
                    let v = merged[k]!
                    w.append(k.conversation); w.append(k.message); w.appendTimestamp(microseconds: k.sentAt); w.append(k.recipient)
                    w.appendTimestamp(microseconds: v.delivered); w.appendTimestamp(microseconds: v.read)
                    try w.endRow()
                }
            }
        }
        try copy("ingest_presence", 7) { e, _, w in
            guard case .presence(let u, let at, let st, let dev) = e else { return false }
            w.append(u); w.appendTimestamp(microseconds: at); w.append(dev); w.append(st); return true
        }
    }

    private func apply(_ c: PostgresConnection) throws {
        for s in SQLScript.split(IngestWorker.applySQL) {
            let t = Date()
            try c.execute(SQL(unsafeRaw: s.text))
            if logger.logLevel <= .debug { logger.debug("apply line \(s.line): \(Int(Date().timeIntervalSince(t) * 1000)) ms") }
        }
    }

    static let applySQL = """
            INSERT INTO chat.users (user_id, handle, display_name, created_at)
            SELECT DISTINCT ON (user_id) user_id, handle, display_name, coalesce(created_at, now()) FROM ingest_users ORDER BY user_id
            ON CONFLICT DO NOTHING;
            INSERT INTO chat.conversations (conversation_id, kind, title, created_by, created_at, member_limit)
            SELECT DISTINCT ON (conversation_id) conversation_id, kind, title, created_by, coalesce(created_at, now()),
                   CASE kind WHEN 'direct' THEN 2 ELSE 1024 END
            FROM ingest_conversations ORDER BY conversation_id
            ON CONFLICT DO NOTHING;
            INSERT INTO chat.media (conversation_id, sha256, size_bytes, mime_type, file_name, encoding, bytes)
            SELECT DISTINCT ON (conversation_id, sha256) conversation_id, sha256, size_bytes, mime_type, file_name, 'none', bytes
            FROM ingest_media ORDER BY conversation_id, sha256
            ON CONFLICT DO NOTHING;
            INSERT INTO chat.members (conversation_id, user_id, joined_at, role)
            SELECT conversation_id, user_id, at, role FROM ingest_joins j
            WHERE NOT EXISTS (SELECT 1 FROM chat.members m WHERE m.conversation_id = j.conversation_id AND m.user_id = j.user_id AND m.left_at IS NULL AND m.joined_at <= j.at)
            ON CONFLICT DO NOTHING;
            UPDATE chat.members m SET left_at = l.at
            FROM (SELECT conversation_id, user_id, min(at) AS at FROM ingest_leaves GROUP BY 1, 2) l
            WHERE m.conversation_id = l.conversation_id AND m.user_id = l.user_id AND m.left_at IS NULL AND m.joined_at <= l.at;
            INSERT INTO chat.send_dedup (conversation_id, sender_id, client_message_id, message_id, sent_at)
            SELECT DISTINCT ON (conversation_id, sender_id, client_message_id) conversation_id, sender_id, client_message_id, message_id, sent_at
            FROM ingest_messages WHERE client_message_id IS NOT NULL
            ORDER BY conversation_id, sender_id, client_message_id, sent_at, message_id
            ON CONFLICT DO NOTHING;
            INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at, deleted_at)
            SELECT i.conversation_id, i.message_id, i.sent_at, i.sender_id, i.kind, i.body, i.reply_to_id, i.client_message_id, i.media_sha256, i.edited_at, i.deleted_at
            FROM ingest_messages i
            WHERE i.client_message_id IS NULL OR EXISTS (
                SELECT 1 FROM chat.send_dedup d WHERE d.conversation_id = i.conversation_id AND d.sender_id = i.sender_id
                  AND d.client_message_id = i.client_message_id AND d.message_id = i.message_id)
            ON CONFLICT DO NOTHING;
            INSERT INTO chat.receipts AS r (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at)
            SELECT conversation_id, message_id, sent_at, recipient_id,
                   CASE WHEN bool_or(read_at IS NOT NULL) THEN 3 ELSE 2 END,
                   min(delivered_at), min(read_at), now()
            FROM ingest_receipts GROUP BY conversation_id, message_id, sent_at, recipient_id
            ON CONFLICT (conversation_id, message_id, recipient_id, sent_at) DO UPDATE
               SET status = greatest(r.status, EXCLUDED.status),
                   delivered_at = CASE WHEN EXCLUDED.delivered_at IS NULL THEN r.delivered_at
                                       ELSE least(coalesce(r.delivered_at, EXCLUDED.delivered_at), EXCLUDED.delivered_at) END,
                   read_at = CASE WHEN EXCLUDED.read_at IS NULL THEN r.read_at
                                  ELSE least(coalesce(r.read_at, EXCLUDED.read_at), EXCLUDED.read_at) END,
                   updated_at = now()
             WHERE r.status < EXCLUDED.status
                OR (EXCLUDED.delivered_at IS NOT NULL AND (r.delivered_at IS NULL OR EXCLUDED.delivered_at < r.delivered_at))
                OR (EXCLUDED.read_at IS NOT NULL AND (r.read_at IS NULL OR EXCLUDED.read_at < r.read_at));
            INSERT INTO chat.presence_events (user_id, occurred_at, device_id, state)
            SELECT DISTINCT ON (user_id, occurred_at, device_id) user_id, occurred_at, device_id, state FROM ingest_presence
            ORDER BY user_id, occurred_at, device_id
            ON CONFLICT DO NOTHING;
            """
}
