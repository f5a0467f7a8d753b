import ChatStorePostgres
import ChatStoreZstd
import Foundation
import Logging

/// Loads NDJSON event streams (plain or `.zst`), idempotently, in batches.
///
/// Each line is parsed and checked (JSON, fields and types, UTF-8, timestamps inside a
/// partition), then checked against the database and the batch (unknown conversation, user or
/// message). Good lines are staged through COPY and applied with upserts that never move a
/// receipt backwards, so re-running a file changes nothing. Bad lines go to the reject file with
/// `file:line` and the reason; with `strict`, the first bad line aborts and nothing is committed.
public final class EventIngester: @unchecked Sendable {
    public struct Options: Sendable {
        public var strict = false
        public var batchSize = 10_000
        /// Where rejected lines go (`file:line<TAB>reason<TAB>line`); nil: not written.
        public var rejectPath: String?
        public init() {}
    }

    public struct Report: Codable, Sendable {
        public var lines: Int
        public var accepted: Int
        public var rejected: Int
        public var byType: [String: Int]
        public var rejectReasons: [String: Int]
        public var firstRejects: [String]
        public var seconds: Double
        public var linesPerSecond: Double { seconds > 0 ? Double(lines) / seconds : 0 }
    }

    /// Thrown in strict mode at the first bad line.
    public struct StrictFailure: Error, CustomStringConvertible, LocalizedError {
        public let location: String
        public let reason: String
        public var description: String { "\(location): \(reason) (strict mode: nothing was committed)" }
        public var errorDescription: String? { description }
    }

    let conn: PostgresConnection
    let options: Options
    let logger: Logger
    private var report = Report(lines: 0, accepted: 0, rejected: 0, byType: [:], rejectReasons: [:], firstRejects: [], seconds: 0)
    private var rejects: AtomicFileWriter?
    private var ranges: [String: [(Int64, Int64)]] = [:]
    private var batch: [(loc: String, line: [UInt8], event: Event)] = []
    private var recentMessages: [[Int64]: Int64] = [:]
    private var recentOrder: [[Int64]] = []
    private var recentHead = 0
    /// How many recently ingested messages are remembered for receipt lookups.
    static let recentCapacity = 200_000

    private func rememberMessage(_ key: [Int64], _ t: Int64) {
        if recentOrder.count < EventIngester.recentCapacity {
            recentOrder.append(key)
        } else {
            recentMessages[recentOrder[recentHead]] = nil
            recentOrder[recentHead] = key
            recentHead = (recentHead + 1) % EventIngester.recentCapacity
        }
        recentMessages[key] = t
    }

    public init(connection: PostgresConnection, options: Options, logger: Logger) {
        conn = connection
        self.options = options
        self.logger = logger
    }

    /// Ingests the files in order.
    /// - Returns: counts of lines, accepted, rejected (by reason).
    /// - Throws: `StrictFailure` (strict mode), `PostgresError`, `ZstdError` (a damaged `.zst`).
    public func ingest(paths: [String], progress: ((Int) -> Void)? = nil) throws -> Report {
        let t0 = Date()
        if let r = options.rejectPath { rejects = try AtomicFileWriter(path: r) }
        let pm = PartitionManager(logger: logger)
        for parent in ["messages", "receipts", "presence_events"] {
            ranges[parent] = try pm.partitions(conn, parent: parent).map {
                (Int64($0.from.timeIntervalSince1970) * 1_000_000, Int64($0.to.timeIntervalSince1970) * 1_000_000)
            }
        }
        try createStaging()
        if options.strict {
            try conn.transaction { _ in
                for path in paths {
                    try self.readLines(path) { lineNo, bytes in
                        self.report.lines += 1
                        switch Self.parseLine(bytes, loc: "\(path):\(lineNo)", ranges: self.ranges) {
                        case .success(let item): self.batch.append(item)
                        case .failure(let reject):
                            // Earlier lines of the batch are checked first, so the error reported
                            // is the first bad line in file order.
                            try self.flush()
                            try self.reject(reject.loc, reject.line, reject.reason)
                        }
                        if self.batch.count >= self.options.batchSize { try self.flush() }
                    }
                }
                try self.flush()
            }
        } else {
            // Parsing runs on its own thread, one batch ahead of the database work.
            let queue = BatchQueue(capacity: 2)
            let ranges = self.ranges
            let batchSize = options.batchSize
            let reader = Thread { [self] in
                var items: [(loc: String, line: [UInt8], event: Event)] = []
                var bad: [ParseReject] = []
                var lines = 0
                do {
                    for path in paths {
                        try self.readLines(path) { lineNo, bytes in
                            lines += 1
                            switch Self.parseLine(bytes, loc: "\(path):\(lineNo)", ranges: ranges) {
                            case .success(let item): items.append(item)
                            case .failure(let r): bad.append(r)
                            }
                            if items.count >= batchSize {
                                queue.put(.batch(items, bad, lines))
                                items = []; bad = []; lines = 0
                            }
                        }
                    }
                    queue.put(.batch(items, bad, lines))
                    queue.put(.end)
                } catch {
                    queue.put(.failed(String(describing: error)))
                }
            }
            reader.start()
            defer { queue.cancel() }
            loop: while true {
                switch queue.take() {
                case .batch(let items, let bad, let lines):
                    report.lines += lines
                    for r in bad { try reject(r.loc, r.line, r.reason) }
                    batch = items
                    try flush()
                    progress?(report.lines)
                case .end: break loop
                case .failed(let message):
                    throw EventError(message)
                }
            }
        }
        try rejects?.commit()
        report.seconds = Date().timeIntervalSince(t0)
        return report
    }

    struct ParseReject: Error {
        let loc: String
        let line: [UInt8]
        let reason: String
    }

    /// Parses and checks one line on its own (no database): JSON, fields, timestamps, partitions.
    static func parseLine(_ bytes: [UInt8], loc: String, ranges: [String: [(Int64, Int64)]]) -> Result<(loc: String, line: [UInt8], event: Event), ParseReject> {
        do {
            let event = try bytes.withUnsafeBytes { raw -> Event in
                let obj: [String: FlatJSONValue]
                do { obj = try FlatJSON.parse(raw) } catch let e as FlatJSON.ParseError { throw EventError("malformed JSON at \(e.description)") }
                return try Event.from(obj)
            }
            try checkPartition(event, ranges)
            return .success((loc, bytes, event))
        } catch let e as EventError {
            return .failure(ParseReject(loc: loc, line: bytes, reason: e.reason))
        } catch {
            return .failure(ParseReject(loc: loc, line: bytes, reason: String(describing: error)))
        }
    }

    // MARK: - Reading

    private func readLines(_ path: String, _ body: (Int, [UInt8]) throws -> Void) throws {
        var pending: [UInt8] = []
        var lineNo = 0
        func feed(_ chunk: UnsafeRawBufferPointer) throws {
            var start = 0
            let bytes = chunk.bindMemory(to: UInt8.self)
            for i in 0..<bytes.count where bytes[i] == 10 {
                lineNo += 1
                var line = pending
                line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
                pending.removeAll(keepingCapacity: true)
                if line.last == 13 { line.removeLast() }
                if !line.isEmpty { try body(lineNo, line) }
                start = i + 1
            }
            pending.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        }
        if path.hasSuffix(".zst") {
            try ZstdDecompressor.decompressFile(path: path) { try feed($0) }
        } else {
            try FileChunks.read(path: path) { try feed($0) }
        }
        if !pending.isEmpty { lineNo += 1; try body(lineNo, pending) }
    }

    static func checkPartition(_ e: Event, _ ranges: [String: [(Int64, Int64)]]) throws {
        func check(_ parent: String, _ t: Int64) throws {
            guard ranges[parent]!.contains(where: { $0.0 <= t && t < $0.1 }) else {
                throw EventError("timestamp \(PostgresTimestamp.format(microsecondsSinceEpoch: t)) is outside every \(parent) partition (run `chatstore partitions ensure`, or create partitions for that range)")
            }
        }
        switch e {
        case .message(_, _, _, let t, _, _, _, _, _, _, _): try check("messages", t)
        case .presence(_, let t, _, _): try check("presence_events", t)
        default: break
        }
    }

    private func reject(_ loc: String, _ line: [UInt8], _ reason: String) throws {
        if options.strict { throw StrictFailure(location: loc, reason: reason) }
        report.rejected += 1
        // Group reasons without their varying details (ids, columns, values).
        let key = String(reason.prefix { $0 != ":" }).replacingOccurrences(of: "[0-9]+", with: "N", options: .regularExpression)
        report.rejectReasons[String(key.prefix(80)), default: 0] += 1
        if report.firstRejects.count < 20 { report.firstRejects.append("\(loc): \(reason)") }
        if let rejects {
            try rejects.write(Array("\(loc)\t\(reason)\t".utf8))
            // Invalid UTF-8 is replaced by U+FFFD so the reject file stays valid text.
            try rejects.write(Array(String(decoding: line.map { $0 == 9 || $0 == 10 ? 32 : $0 }, as: UTF8.self).utf8))
            try rejects.write([10])
        }
    }

    // MARK: - Applying a batch

    private func createStaging() throws {
        try conn.executeScript("""
            CREATE TEMP TABLE IF NOT EXISTS ingest_users (user_id bigint, handle text, display_name text, created_at timestamptz);
            CREATE TEMP TABLE IF NOT EXISTS ingest_conversations (conversation_id bigint, kind text, title text, created_by bigint, created_at timestamptz);
            CREATE TEMP TABLE IF NOT EXISTS ingest_joins (conversation_id bigint, user_id bigint, at timestamptz, role text);
            CREATE TEMP TABLE IF NOT EXISTS ingest_leaves (conversation_id bigint, user_id bigint, at timestamptz);
            CREATE TEMP TABLE IF NOT EXISTS ingest_messages (conversation_id bigint, message_id bigint, sent_at timestamptz, sender_id bigint,
                kind text, body text, reply_to_id bigint, client_message_id text, media_sha256 bytea, edited_at timestamptz, deleted_at timestamptz);
            CREATE TEMP TABLE IF NOT EXISTS ingest_receipts (conversation_id bigint, message_id bigint, sent_at timestamptz, recipient_id bigint,
                at timestamptz, is_read boolean);
            CREATE TEMP TABLE IF NOT EXISTS ingest_presence (user_id bigint, occurred_at timestamptz, device_id text, state text);
            CREATE TEMP TABLE IF NOT EXISTS ingest_media (conversation_id bigint, sha256 bytea, size_bytes bigint, mime_type text, file_name text, bytes bytea);
            """)
    }

    private func flush() throws {
        guard !batch.isEmpty else { return }
        let events = batch
        batch.removeAll(keepingCapacity: true)
        let t0 = Date()
        try conn.transaction { c in
            // What the batch references, looked up in one query per kind.
            var convIDs = Set<Int64>(), userIDs = Set<Int64>(), msgKeys = Set<[Int64]>()
            for e in events {
                switch e.event {
                case .join(let cv, let u, _, _): convIDs.insert(cv); userIDs.insert(u)
                case .leave(let cv, _, _): convIDs.insert(cv)
                case .message(let cv, _, _, _, _, _, _, _, _, _, _): convIDs.insert(cv)
                case .receipt(let cv, let m, _, _, _): convIDs.insert(cv); msgKeys.insert([cv, m])
                case .media(let cv, _, _, _, _, _): convIDs.insert(cv)
                default: break
                }
            }
            var knownConvs = Set<Int64>(), knownUsers = Set<Int64>()
            var knownMessages: [[Int64]: Int64] = [:]
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
                let cvs = msgKeys.map { $0[0] }, ms = msgKeys.map { $0[1] }
                for r in try c.query("""
                    SELECT m.conversation_id, m.message_id, (extract(epoch FROM m.sent_at) * 1000000)::bigint AS us
                    FROM unnest(\(cvs)::bigint[], \(ms)::bigint[]) k(cv, mid)
                    JOIN chat.messages m ON m.conversation_id = k.cv AND m.message_id = k.mid
                    """) {
                    knownMessages[[try r.decode(Int64.self, at: 0), try r.decode(Int64.self, at: 1)]] = try r.decode(Int64.self, at: 2)
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
                    if !knownConvs.contains(cv) { reason = "unknown conversation \(cv)" } else if !knownUsers.contains(u) { reason = "unknown user \(u)" }
                case .leave(let cv, _, _), .media(let cv, _, _, _, _, _):
                    if !knownConvs.contains(cv) { reason = "unknown conversation \(cv)" }
                case .message(let cv, let id, _, let t, _, _, _, _, _, _, _):
                    if !knownConvs.contains(cv) { reason = "unknown conversation \(cv)" } else { knownMessages[[cv, id]] = t }
                case .receipt(let cv, let m, _, let at, _):
                    if !knownConvs.contains(cv) { reason = "unknown conversation \(cv)" } else if let t = knownMessages[[cv, m]] {
                        sentAt = t
                        if !ranges["receipts"]!.contains(where: { $0.0 <= t && t < $0.1 }) { reason = "the message's time is outside every receipts partition" }
                        if at < t { logger.debug("\(loc): receipt time before the message was sent (kept; the receipt audit reports it)") }
                    } else { reason = "receipt for unknown message \(cv):\(m)" }
                case .presence: break
                }
                if let reason { try reject(loc, line, reason) } else { accepted.append((loc, e, sentAt)) }
            }
            let t1 = Date()
            for (_, e, _) in accepted {
                if case .message(let cv, let id, _, let t, _, _, _, _, _, _, _) = e { rememberMessage([cv, id], t) }
            }
            try stage(c, accepted)
            let t2 = Date()
            try apply(c)
            logger.debug("batch of \(events.count): lookups \(Int(t1.timeIntervalSince(t0) * 1000)) ms, staging \(Int(t2.timeIntervalSince(t1) * 1000)) ms, applying \(Int(Date().timeIntervalSince(t2) * 1000)) ms")
            report.accepted += accepted.count
            for a in accepted { report.byType[a.1.typeName, default: 0] += 1 }
        }
    }

    private func stage(_ c: PostgresConnection, _ events: [(String, Event, Int64?)]) throws {
        try c.executeScript("""
            TRUNCATE ingest_users, ingest_conversations, ingest_joins, ingest_leaves, ingest_messages, ingest_receipts, ingest_presence, ingest_media
            """)
        let types = Set(events.map { $0.1.typeName })
        func copy(_ table: String, _ names: [String], _ filter: (Event, Int64?, inout CopyInWriter) throws -> Bool) throws {
            guard names.contains(where: types.contains) else { return }
            try c.copyIn(SQL(unsafeRaw: "COPY \(table) FROM STDIN")) { w in
                for (_, e, s) in events { if try filter(e, s, &w) { try w.endRow() } }
            }
        }
        try copy("ingest_users", ["user"]) { e, _, w in
            guard case .user(let id, let h, let d, let t) = e else { return false }
            w.append(id); w.append(h); w.append(d); w.appendTimestamp(microseconds: t); return true
        }
        try copy("ingest_conversations", ["conversation"]) { e, _, w in
            guard case .conversation(let id, let k, let title, let by, let t) = e else { return false }
            w.append(id); w.append(k); w.append(title); w.append(by); w.appendTimestamp(microseconds: t); return true
        }
        try copy("ingest_joins", ["join"]) { e, _, w in
            guard case .join(let cv, let u, let at, let role) = e else { return false }
            w.append(cv); w.append(u); w.appendTimestamp(microseconds: at); w.append(role); return true
        }
        try copy("ingest_leaves", ["leave"]) { e, _, w in
            guard case .leave(let cv, let u, let at) = e else { return false }
            w.append(cv); w.append(u); w.appendTimestamp(microseconds: at); return true
        }
        try copy("ingest_media", ["media"]) { e, _, w in
            guard case .media(let cv, let sha, let size, let mime, let name, let data) = e else { return false }
            w.append(cv); w.appendBytea(sha); w.append(size); w.append(mime); w.append(name)
            if let data { w.appendBytea(data) } else { w.appendNull() }
            return true
        }
        try copy("ingest_messages", ["message"]) { e, _, w in
            guard case .message(let cv, let id, let s, let t, let k, let body, let reply, let cid, let media, let ed, let del) = e else { return false }
            w.append(cv); w.append(id); w.appendTimestamp(microseconds: t); w.append(s); w.append(k); w.append(body); w.append(reply); w.append(cid)
            if let media { w.appendBytea(media) } else { w.appendNull() }
            w.appendTimestamp(microseconds: ed); w.appendTimestamp(microseconds: del); return true
        }
        try copy("ingest_receipts", ["delivered", "read"]) { e, sentAt, w in
            guard case .receipt(let cv, let m, let r, let at, let read) = e else { return false }
            w.append(cv); w.append(m); w.appendTimestamp(microseconds: sentAt); w.append(r); w.appendTimestamp(microseconds: at); w.append(read); return true
        }
        try copy("ingest_presence", ["presence"]) { e, _, w in
            guard case .presence(let u, let at, let st, let dev) = e else { return false }
            w.append(u); w.appendTimestamp(microseconds: at); w.append(dev); w.append(st); return true
        }
    }

    private func apply(_ c: PostgresConnection) throws {
        for s in SQLScript.split(EventIngester.applySQL) {
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
                   CASE WHEN bool_or(is_read) THEN 3 ELSE 2 END,
                   min(at) FILTER (WHERE NOT is_read), min(at) FILTER (WHERE is_read), now()
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

/// A bounded hand-off of parsed batches from the reader thread to the database thread.
final class BatchQueue: @unchecked Sendable {
    enum Item {
        case batch([(loc: String, line: [UInt8], event: Event)], [EventIngester.ParseReject], Int)
        case end
        case failed(String)
    }
    private var items: [Item] = []
    private let capacity: Int
    private let cond = NSCondition()
    init(capacity: Int) { self.capacity = capacity }
    private var cancelled = false
    /// Makes every later `put` return at once (the consumer stopped after an error).
    func cancel() {
        cond.lock()
        cancelled = true
        items.removeAll()
        cond.broadcast()
        cond.unlock()
    }
    func put(_ item: Item) {
        cond.lock()
        while items.count >= capacity && !cancelled { cond.wait() }
        if cancelled { cond.unlock(); return }
        items.append(item)
        cond.broadcast()
        cond.unlock()
    }
    func take() -> Item {
        cond.lock()
        while items.isEmpty { cond.wait() }
        let item = items.removeFirst()
        cond.broadcast()
        cond.unlock()
        return item
    }
}
