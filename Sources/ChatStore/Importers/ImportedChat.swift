import ChatStorePostgres
import Foundation
import Logging

/// A chat read from an export, ready to load: the importers produce it, `ImportLoader` writes it.
public struct ImportedChat: Sendable {
    public struct Message: Sendable {
        public var sourceID: Int64          // the export's id or line number: stable across re-imports
        public var at: Int64                // microseconds since the epoch
        public var sender: String?          // display name; nil for system lines
        public var senderKey: String?       // stable id in the source ("user123"); defaults to the name
        public var text: String
        public var kind: String             // text, media, system
        public var mediaFileName: String?
        public var mediaMime: String?
        public var replyToSourceID: Int64?
        public var editedAt: Int64?
        public var line: Int
        /// The time the message id is built from, in microseconds: the wall-clock time as the
        /// export writes it, read as if it were UTC, for exports with local times (WhatsApp, old
        /// Telegram). Nil when `at` is absolute. So the id does not change with `--timezone`,
        /// and a re-import with a corrected zone replaces the messages instead of adding them.
        public var idTime: Int64? = nil
    }

    public var source: String               // whatsapp, telegram
    public var chatKey: String              // stable identity of the chat in the source
    public var title: String?
    public var isGroup: Bool?
    public var messages: [Message]
    /// Lines or entries that could not be parsed: (line or index, reason).
    public var problems: [(Int, String)]

    /// What a problem's number counts: a line of a WhatsApp export, or the position of the
    /// message in a Telegram chat's `messages` array (JSON has no useful line there).
    public var positionName: String { source == "telegram" ? "message" : "line" }

    /// The chat without the messages PostgreSQL would refuse or misfile, each moved to
    /// `problems` with its line: a time outside 1970-2099 (a 3-digit year, a pre-1970 or
    /// absurd Unix time would land in a default partition or ask for a partition no retention
    /// reaches), and a NUL character in a text (PostgreSQL text cannot hold it).
    public func validated() -> ImportedChat {
        var out = self
        out.messages = []
        for m in messages {
            if !PostgresTimestampParser.accepted.contains(m.at) {
                out.problems.append((m.line, "date out of range (1970-01-01 to 2099-12-31 UTC): \(ImportedChat.describe(m.at))"))
            } else if let e = m.editedAt, !PostgresTimestampParser.accepted.contains(e) {
                out.problems.append((m.line, "edit date out of range (1970-01-01 to 2099-12-31 UTC): \(ImportedChat.describe(e))"))
            } else if m.text.utf8.contains(0) || (m.sender?.utf8.contains(0) ?? false) || (m.mediaFileName?.utf8.contains(0) ?? false) {
                out.problems.append((m.line, "NUL character in the message: PostgreSQL text cannot hold it"))
            } else {
                out.messages.append(m)
            }
        }
        if out.title?.utf8.contains(0) == true { out.title = out.title?.replacingOccurrences(of: "\u{0}", with: "") }
        out.problems.sort { $0.0 < $1.0 }
        return out
    }

    static func describe(_ micros: Int64) -> String {
        "\(micros / 1_000_000) s since 1970"
    }
}

/// Stable 62-bit ids for imported users, conversations and messages, so a re-import adds nothing.
enum ImportIDs {
    static func hash(_ s: String) -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h ^= UInt64(b); h = h &* 0x100_0000_01b3 }
        return Int64(h & 0x3FFF_FFFF_FFFF_FFFF) | (1 << 61)   // above ids issued natively
    }
}

/// Writes an imported chat: users, the conversation, members, media rows (file name, no bytes),
/// messages, and read receipts for every other member (history is taken as read), in one
/// transaction with ON CONFLICT DO NOTHING, so importing the same file again adds nothing.
public struct ImportLoader {
    public let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public struct Report: Codable, Sendable {
        public var source: String
        public var conversationId: Int64
        public var users: Int
        public var messagesInFile: Int
        public var messagesAdded: Int
        /// Messages already stored with another time (a re-import with a corrected
        /// `--timezone`), replaced by this import's.
        public var messagesReplaced: Int
        public var media: Int
        public var problems: [String]
    }

    public func load(_ chat: ImportedChat, into conn: PostgresConnection) throws -> Report {
        let chat = chat.validated()
        let convID = ImportIDs.hash("\(chat.source):chat:\(chat.chatKey)")
        var people: [(key: String, name: String)] = []
        var seen = Set<String>()
        for m in chat.messages {
            guard let name = m.sender else { continue }
            let key = m.senderKey ?? name
            if seen.insert(key).inserted { people.append((key, name)) }
        }
        let userID = Dictionary(uniqueKeysWithValues: people.map { ($0.key, ImportIDs.hash("\(chat.source):user:\($0.key)")) })
        let first = chat.messages.map(\.at).min() ?? 0
        let isGroup = chat.isGroup ?? (people.count != 2)
        // Partitions for the days that have messages.
        let pm = PartitionManager(logger: logger)
        let days = Set(chat.messages.map { $0.at / 86_400_000_000 })
        for d in days.sorted() {
            let from = Date(timeIntervalSince1970: Double(d * 86_400))
            try pm.ensureRange(conn, from: from, until: from.addingTimeInterval(86_400))
        }
        var added = 0
        var replaced = 0
        var mediaCount = 0
        try conn.transaction { c in
            try c.execute("CREATE TEMP TABLE IF NOT EXISTS import_messages (LIKE chat.messages INCLUDING DEFAULTS)")
            try c.execute("TRUNCATE import_messages")
            for p in people {
                try c.execute("""
                    INSERT INTO chat.users (user_id, handle, display_name, created_at)
                    VALUES (\(userID[p.key]!), \("\(chat.source):\(p.key)"), \(p.name), \(Date(timeIntervalSince1970: Double(first) / 1e6)))
                    ON CONFLICT DO NOTHING
                    """)
            }
            let firstSender = people.first.map { userID[$0.key]! }
            try c.execute("""
                INSERT INTO chat.conversations (conversation_id, kind, title, created_by, created_at, member_limit)
                VALUES (\(convID), \(isGroup ? "group" : "direct"), \(chat.title), \(firstSender), \(Date(timeIntervalSince1970: Double(first) / 1e6)), \(isGroup ? 1024 : 2))
                ON CONFLICT DO NOTHING
                """)
            for p in people {
                try c.execute("""
                    INSERT INTO chat.members (conversation_id, user_id, joined_at, role)
                    SELECT \(convID), \(userID[p.key]!), \(Date(timeIntervalSince1970: Double(first) / 1e6)), 'member'
                    WHERE NOT EXISTS (SELECT 1 FROM chat.members WHERE conversation_id = \(convID) AND user_id = \(userID[p.key]!))
                    """)
            }
            // Media rows: content unknown, addressed by the hash of the file name.
            var mediaHashes: [Int64: [UInt8]] = [:]
            for m in chat.messages where m.kind == "media" {
                let name = m.mediaFileName ?? "media-\(m.sourceID)"
                let sha = SHA256.hash("\(chat.source):\(chat.chatKey):\(name)").bytes
                mediaHashes[m.sourceID] = sha
                mediaCount += try c.execute("""
                    INSERT INTO chat.media (conversation_id, sha256, size_bytes, mime_type, file_name, encoding)
                    VALUES (\(convID), \(Data(sha)), 0, \(m.mediaMime ?? "application/octet-stream"), \(name), 'none')
                    ON CONFLICT DO NOTHING
                    """).affectedRows
            }
            func mid(_ m: ImportedChat.Message) -> Int64 {
                (((m.idTime ?? m.at) / 1000 - 1_577_836_800_000) << 22) | (m.sourceID & 0x3F_FFFF)
            }
            let byID = Dictionary(chat.messages.map { ($0.sourceID, $0) }, uniquingKeysWith: { a, _ in a })
            try c.copyIn("COPY import_messages (conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at) FROM STDIN") { w in
                for m in chat.messages {
                    w.append(convID); w.append(mid(m)); w.appendTimestamp(microseconds: m.at)
                    w.append(m.sender.map { userID[m.senderKey ?? $0]! } ?? firstSender ?? 0)
                    w.append(m.kind); w.append(m.text)
                    w.append(m.replyToSourceID.flatMap { byID[$0] }.map(mid))
                    w.append("\(chat.source):\(m.sourceID)")
                    if let sha = mediaHashes[m.sourceID] { w.appendBytea(sha) } else { w.appendNull() }
                    w.appendTimestamp(microseconds: m.editedAt)
                    try w.endRow()
                }
            }
            // A re-import with another --timezone: the same ids with other times. The earlier
            // rows (and the receipts made for them) are replaced by the corrected ones.
            try c.execute("""
                DELETE FROM chat.receipts r USING import_messages i
                WHERE r.conversation_id = i.conversation_id AND r.message_id = i.message_id AND r.sent_at <> i.sent_at
                """)
            replaced = try c.execute("""
                DELETE FROM chat.messages m USING import_messages i
                WHERE m.conversation_id = i.conversation_id AND m.message_id = i.message_id AND m.sent_at <> i.sent_at
                """).affectedRows
            if replaced > 0 {
                // Members and users joined no later than the (now earlier) first message.
                try c.execute("UPDATE chat.members SET joined_at = \(Date(timeIntervalSince1970: Double(first) / 1e6)) WHERE conversation_id = \(convID) AND joined_at > \(Date(timeIntervalSince1970: Double(first) / 1e6))")
                try c.execute("UPDATE chat.conversations SET created_at = \(Date(timeIntervalSince1970: Double(first) / 1e6)) WHERE conversation_id = \(convID) AND created_at > \(Date(timeIntervalSince1970: Double(first) / 1e6))")
            }
            added = try c.executeCountingRows("INSERT INTO chat.messages SELECT * FROM import_messages ON CONFLICT DO NOTHING") - replaced
            // The receipts' change_xid is given, not left to the default: on Citus this INSERT ...
            // SELECT may run on the shards, where the default would take the workers' ids.
            let xid = try c.scalar(Int64.self, "SELECT pg_current_xact_id()::text::bigint")
            try c.execute("""
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at, change_xid)
                SELECT m.conversation_id, m.message_id, m.sent_at, mb.user_id, 3, m.sent_at, m.sent_at, m.sent_at, \(xid)
                FROM import_messages m JOIN chat.members mb ON mb.conversation_id = m.conversation_id AND mb.user_id <> m.sender_id
                ON CONFLICT DO NOTHING
                """)
        }
        return Report(source: chat.source, conversationId: convID, users: people.count, messagesInFile: chat.messages.count,
                      messagesAdded: added, messagesReplaced: replaced, media: mediaCount, problems: chat.problems.map { "\(chat.title.map { "chat \"\($0)\", " } ?? "")\(chat.positionName) \($0.0): \($0.1)" })
    }
}
