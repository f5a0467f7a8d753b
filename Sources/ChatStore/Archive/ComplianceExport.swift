import ChatStorePostgres
import ChatStoreZstd
import Foundation
import Logging

/// Exports everything one user sent or could read, or one conversation, into a single
/// zstd-compressed NDJSON file, from live partitions and from archives of retired partitions.
/// Each line has a `record` field: `conversation`, `member`, `message`, `receipt` or `media`.
public struct ComplianceExport {
    public enum Subject: Sendable { case user(Int64), conversation(Int64) }

    public let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    public struct Report: Codable, Sendable {
        public var path: String
        public var conversations: Int
        public var messages: Int
        public var receipts: Int
        public var media: Int
        public var fromArchives: Int
        public var sha256: String
        public var bytes: Int64
    }

    struct Membership { var conversation: Int64; var joined: Int64; var left: Int64? }

    public func run(_ conn: PostgresConnection, subject: Subject, from: Date?, to: Date?, out: String) throws -> Report {
        let loDate = from ?? Date(timeIntervalSince1970: 0), hiDate = to ?? Date(timeIntervalSinceNow: 86_400 * 365 * 100)
        let lo = PostgresTimestamp.format(loDate)
        let hi = PostgresTimestamp.format(hiDate)
        let w = try AtomicFileWriter(path: out)
        var hash = SHA256()
        w.observer = { hash.update($0) }
        let z = try ZstdCompressor(settings: ZstdSettings(level: 3))
        var buf: [UInt8] = []
        var records: Int64 = 0
        func emit(_ bytes: [UInt8]) throws {
            records += 1
            if records % 4096 == 0 { Progress.report("export", done: records, unit: "records") }
            buf.append(contentsOf: bytes)
            if buf.count > 1 << 20 { try z.compress(buf) { try w.write($0) }; buf.removeAll(keepingCapacity: true) }
        }
        // Membership intervals decide what a user could read.
        var memberships: [Membership] = []
        let userID: Int64?
        switch subject {
        case .user(let u):
            userID = u
            for r in try conn.query("""
                SELECT conversation_id, (extract(epoch FROM joined_at) * 1e6)::bigint AS j, (extract(epoch FROM left_at) * 1e6)::bigint AS l
                FROM chat.members WHERE user_id = \(u)
                """) {
                memberships.append(Membership(conversation: try r.decode(Int64.self, "conversation_id"), joined: try r.decode(Int64.self, "j"), left: try r.decode(Int64?.self, "l")))
            }
        case .conversation(let c):
            userID = nil
            memberships = [Membership(conversation: c, joined: Int64.min, left: nil)]
        }
        let convs = Array(Set(memberships.map(\.conversation))).sorted()
        guard !convs.isEmpty else { throw ArchiveError("nothing to export: no such user or conversation, or no memberships") }
        var report = Report(path: out, conversations: convs.count, messages: 0, receipts: 0, media: 0, fromArchives: 0, sha256: "", bytes: 0)

        // What the subject could see: a message is visible when sent inside a membership interval
        // (any time for a conversation export) or sent by the user.
        // (Ids are formatted from Int64 values, so this text carries no outside input.)
        let visible: String = userID.map { u in
            "(m.sender_id = \(u) OR EXISTS (SELECT 1 FROM chat.members mb WHERE mb.conversation_id = m.conversation_id AND mb.user_id = \(u) AND mb.joined_at <= m.sent_at AND (mb.left_at IS NULL OR m.sent_at < mb.left_at)))"
        } ?? "true"
        func copyJSON(_ record: String, _ columns: [(String, CopyToJSON.Kind)], _ query: SQL) throws -> Int {
            let conv = CopyToJSON(columns: columns, prefix: "\"record\":\"\(record)\",")
            var line: [UInt8] = []
            let sql = SQL(unsafeRaw: "COPY (\(conn.render(query))) TO STDOUT")
            // Bind values cannot go through COPY: the query above only holds ids we formatted as integers.
            return try conn.copyOut(sql) { row in
                line.removeAll(keepingCapacity: true)
                conv.append(row: row, to: &line)
                try emit(line)
            }
        }
        let ids = convs.map(String.init).joined(separator: ",")
        _ = try copyJSON("conversation", [("conversation_id", .number), ("kind", .text), ("title", .text), ("created_by", .number), ("created_at", .timestamp)],
                         SQL(unsafeRaw: "SELECT conversation_id, kind, title, created_by, created_at FROM chat.conversations WHERE conversation_id IN (\(ids)) ORDER BY 1"))
        _ = try copyJSON("member", [("conversation_id", .number), ("user_id", .number), ("joined_at", .timestamp), ("left_at", .timestamp), ("role", .text)],
                         SQL(unsafeRaw: "SELECT conversation_id, user_id, joined_at, left_at, role FROM chat.members WHERE conversation_id IN (\(ids)) ORDER BY 1, 2, 3"))
        let range = "m.sent_at >= '\(lo)' AND m.sent_at < '\(hi)'"
        let msgCols = ArchiveExporter.messageColumns.map { "m." + $0.0 }.joined(separator: ", ")
        let rcpCols = ArchiveExporter.receiptColumns.map { "r." + $0.0 }.joined(separator: ", ")
        let receiptFilter = userID.map { "(r.recipient_id = \($0) OR m.sender_id = \($0))" } ?? "true"
        // One UTC day of messages per statement, with constant bounds (the receipts of a day's
        // messages lie within a day either side): each statement's sort holds one day's rows and
        // reads three receipts partitions, whatever the history. A single statement over a month
        // sorted the heaviest user's 1.48M rows into 2.6 GB of temporary files.
        let span = try conn.queryOne("""
            SELECT min(m.sent_at) AS a, max(m.sent_at) AS b FROM chat.messages m
            WHERE m.conversation_id IN (\(unsafeRaw: ids)) AND m.sent_at >= \(lo)::timestamptz AND m.sent_at < \(hi)::timestamptz
            """)
        var days: [Date] = []
        if let span, let a = try span.decode(Date?.self, "a"), let b = try span.decode(Date?.self, "b") {
            var d = Date(timeIntervalSince1970: (a.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
            while d <= b { days.append(d); d = d.addingTimeInterval(86_400) }
        }
        // The subject's visible messages of day d, within [lo, hi).
        func dayRange(_ d: Date) -> String {
            "m.sent_at >= '\(PostgresTimestamp.format(max(loDate, d)))' AND m.sent_at < '\(PostgresTimestamp.format(min(hiDate, d.addingTimeInterval(86_400))))'"
        }
        for d in days {
            report.messages += try copyJSON("message", ArchiveExporter.messageColumns, SQL(unsafeRaw: """
                SELECT \(msgCols) FROM chat.messages m WHERE m.conversation_id IN (\(ids)) AND \(dayRange(d)) AND \(visible) ORDER BY m.sent_at, m.message_id
                """))
        }
        // Receipts one UTC day of their own sent_at per statement, each joined to the messages
        // of that day and the day either side (a receipt lies within a day of its message): each
        // receipts partition is read once, and the messages partitions (a seventh of the rows)
        // three times. Driven by the message's day, every receipts partition was read three
        // times (464 s for the heaviest user of the scale run's month).
        if let first = days.first, let last = days.last {
            var rd = first.addingTimeInterval(-86_400)
            while rd <= last.addingTimeInterval(86_400) {
                let mLo = max(loDate, rd.addingTimeInterval(-86_400)), mHi = min(hiDate, rd.addingTimeInterval(2 * 86_400))
                if mLo < mHi {
                    report.receipts += try copyJSON("receipt", ArchiveExporter.receiptColumns, SQL(unsafeRaw: """
                        SELECT \(rcpCols) FROM chat.receipts r
                        -- By the message's key, as the archives are read below: a receipt row whose sent_at is
                        -- a little off its message's (a duplicate 1 µs apart) is the message's all the same.
                        JOIN chat.messages m ON m.conversation_id = r.conversation_id AND m.message_id = r.message_id
                         AND r.sent_at >= m.sent_at - interval '1 day' AND r.sent_at <= m.sent_at + interval '1 day'
                        WHERE r.conversation_id IN (\(ids)) AND r.sent_at >= '\(PostgresTimestamp.format(rd))' AND r.sent_at < '\(PostgresTimestamp.format(rd.addingTimeInterval(86_400)))'
                          -- The ids again for the messages: the planner does not carry an IN list across the
                          -- join, and the visibility check would run for every message of three days.
                          AND m.conversation_id IN (\(ids)) AND m.sent_at >= '\(PostgresTimestamp.format(mLo))' AND m.sent_at < '\(PostgresTimestamp.format(mHi))'
                          AND \(receiptFilter) AND \(visible) ORDER BY r.sent_at, r.message_id, r.recipient_id
                        """))
                }
                rd = rd.addingTimeInterval(86_400)
            }
        }
        report.media += try copyJSON("media", [("conversation_id", .number), ("sha256", .bytea), ("size_bytes", .number), ("mime_type", .text),
                                               ("file_name", .text), ("encoding", .text), ("bytes", .bytea), ("external_uri", .text)], SQL(unsafeRaw: """
            SELECT md.conversation_id, md.sha256, md.size_bytes, md.mime_type, md.file_name, md.encoding, md.bytes, md.external_uri FROM chat.media md
            WHERE (md.conversation_id, md.sha256) IN (SELECT m.conversation_id, m.media_sha256 FROM chat.messages m
                   WHERE m.conversation_id IN (\(ids)) AND \(range) AND m.media_sha256 IS NOT NULL AND \(visible))
            """))

        // The current (newest verified) archive of each range that is no longer live: a range
        // restored into the database is read from the database only, so no row appears twice.
        let archives = try conn.query("""
            SELECT DISTINCT ON (a.partition_name) a.path FROM chat.archives a
            WHERE a.parent_table = 'messages' AND a.verified_at IS NOT NULL AND a.detached_at IS NOT NULL
              AND a.range_end > \(lo)::timestamptz AND a.range_start < \(hi)::timestamptz
              AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = 'chat.messages'::regclass
                              AND i.inhrelid = to_regclass('chat.' || quote_ident(a.partition_name)))
            ORDER BY a.partition_name, a.archive_id DESC
            """).map { try $0.decode(String.self, at: 0) }
        struct MediaRef: Hashable, Comparable {
            let conversation: Int64, sha256Hex: String
            static func < (a: MediaRef, b: MediaRef) -> Bool { (a.conversation, a.sha256Hex) < (b.conversation, b.sha256Hex) }
        }
        var archivedMedia = Set<MediaRef>()   // media of the archived messages written out
        let convSet = Set(convs)
        let loUS = PostgresTimestamp.parseMicroseconds(lo)!, hiUS = PostgresTimestamp.parseMicroseconds(hi)!
        for path in archives {
            var visibleMessages: [[Int64]: Int64] = [:]   // visible message → sender
            for (file, record) in [("messages.ndjson.zst", "message"), ("receipts.ndjson.zst", "receipt")] {
                var pending: [UInt8] = []
                try ZstdDecompressor.decompressFile(path: path + "/" + file) { chunk in
                    pending.append(contentsOf: chunk)
                    var start = 0
                    while let nl = pending[start...].firstIndex(of: 10) {
                        let line = Array(pending[start..<nl])
                        start = nl + 1
                        let o = try line.withUnsafeBytes { try FlatJSON.parse($0) }
                        guard case .number(let cs) = o["conversation_id"] ?? .null, let cv = Int64(cs), convSet.contains(cv),
                              case .number(let ms) = o["message_id"] ?? .null, let mid = Int64(ms),
                              case .string(let ts) = o["sent_at"] ?? .null, let t = PostgresTimestamp.parseMicroseconds(ts), t >= loUS, t < hiUS else { continue }
                        var include: Bool
                        if record == "message" {
                            var sender: Int64?
                            if case .number(let s) = o["sender_id"] ?? .null { sender = Int64(s) }
                            include = userID == nil || sender == userID || memberships.contains { $0.conversation == cv && $0.joined <= t && ($0.left == nil || t < $0.left!) }
                            if include { visibleMessages[[cv, mid]] = sender ?? 0 }
                        } else {
                            var recipient: Int64?
                            if case .number(let s) = o["recipient_id"] ?? .null { recipient = Int64(s) }
                            // A user sees their own receipts and the statuses of what they sent.
                            if let sender = visibleMessages[[cv, mid]] {
                                include = userID == nil || recipient == userID || sender == userID
                            } else { include = false }
                        }
                        guard include else { continue }
                        try emit(Array("{\"record\":\"\(record)\",".utf8) + line.dropFirst() + [10])
                        if record == "message", case .string(let hex) = o["media_sha256"] ?? .null, hex.count == 64 {
                            archivedMedia.insert(MediaRef(conversation: cv, sha256Hex: hex))
                        }
                        if record == "message" { report.messages += 1 } else { report.receipts += 1 }
                        report.fromArchives += 1
                    }
                    pending.removeFirst(start)
                }
            }
        }
        // Media of archived messages: the media rows stay in chat.media when a range is retired
        // (media is not partitioned), so they come from there, each once, like the live ones.
        if !archivedMedia.isEmpty {
            var pairs: [String] = []
            for ref in archivedMedia.sorted() {
                guard ref.sha256Hex.allSatisfy(\.isHexDigit) else { continue }
                pairs.append("(\(ref.conversation), '\\x\(ref.sha256Hex)'::bytea)")
            }
            for chunk in stride(from: 0, to: pairs.count, by: 1000).map({ pairs[$0..<min($0 + 1000, pairs.count)] }) {
                // Ids and hex digits only (checked above): nothing from outside is spliced in.
                report.media += try copyJSON("media", [("conversation_id", .number), ("sha256", .bytea), ("size_bytes", .number), ("mime_type", .text),
                                                       ("file_name", .text), ("encoding", .text), ("bytes", .bytea), ("external_uri", .text)], SQL(unsafeRaw: """
                    SELECT md.conversation_id, md.sha256, md.size_bytes, md.mime_type, md.file_name, md.encoding, md.bytes, md.external_uri FROM chat.media md
                    WHERE (md.conversation_id, md.sha256) IN (VALUES \(chunk.joined(separator: ", ")))
                      AND (md.conversation_id, md.sha256) NOT IN (SELECT m.conversation_id, m.media_sha256 FROM chat.messages m
                          WHERE m.conversation_id IN (\(ids)) AND \(range) AND m.media_sha256 IS NOT NULL AND \(visible))
                    """))
            }
        }
        try z.compress(buf) { try w.write($0) }
        try z.finish { try w.write($0) }
        try w.commit()
        report.sha256 = hash.finalize().hex
        report.bytes = w.bytesWritten
        return report
    }
}
