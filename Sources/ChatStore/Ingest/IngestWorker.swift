import ChatStorePostgres
import Foundation
import Logging

/// One database connection's share of an ingest: looks up what a batch references, rejects what
/// it cannot resolve and writes the rest, one transaction per batch: new rows by plain COPY where
/// they cannot be stored yet, upserts through staging tables otherwise (see `flush`).
/// `EventIngester` runs one worker per connection and routes every conversation's events to the
/// same worker, so a worker sees its conversations in file order.
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

    /// What the worker remembers about a message it ingested recently: when it was sent (for
    /// receipt lookups) and whether this run inserted it (`fresh`).
    struct Recent {
        let sentAt: Int64
        let fresh: Bool
    }
    // Bounded memory, in two generations (the older one is dropped when the current one is full):
    // recent messages, and digests of the receipts this run wrote for fresh messages. These are
    // hints: a receipt wrongly taken for new makes its step's COPY fail and the receipts be
    // upserted instead.
    private var recent: [MessageKey: Recent] = [:]
    private var olderRecent: [MessageKey: Recent] = [:]
    private var placed = Set<Int64>()
    private var olderPlaced = Set<Int64>()
    /// Conversations known to exist (they are not deleted while ingesting; if one were, its
    /// foreign keys would fail the batch).
    private var knownConversations = Set<Int64>()
    private let messagesPerGeneration: Int
    private let receiptsPerGeneration: Int

    /// A receipt row's full key.
    struct ReceiptKey: Hashable {
        let conversation: Int64
        let message: Int64
        let sentAt: Int64
        let recipient: Int64

        /// A 64-bit digest for the placed-receipts filter (a collision only sends a receipt the
        /// slower, always-correct upsert way).
        var digest: Int64 {
            var h = UInt64(bitPattern: conversation) &* 0x9E37_79B9_7F4A_7C15
            h = (h ^ (h >> 32) ^ UInt64(bitPattern: message)) &* 0xBF58_476D_1CE4_E5B9
            h = (h ^ (h >> 31) ^ UInt64(bitPattern: recipient)) &* 0x94D0_49BB_1331_11EB
            return Int64(bitPattern: h ^ (h >> 29))
        }
    }

    /// What one batch did.
    struct Outcome {
        var accepted = 0
        var byType: [String: Int] = [:]
        var rejects: [EventIngester.Reject] = []
        /// Receipts written with plain COPY (new rows of messages this run inserted).
        var copiedReceipts = 0
        /// Steps that met stored rows on the fast way and were applied with upserts instead.
        var stepsUpserted = 0
    }

    /// - Parameter recentCapacity: how many recently ingested messages are remembered for
    ///   receipt lookups (the rest are probed by index).
    init(connection: PostgresConnection, strict: Bool, ranges: [String: [(Int64, Int64)]], recentCapacity: Int, logger: Logger) {
        conn = connection
        self.strict = strict
        self.ranges = ranges
        messagesPerGeneration = max(1, recentCapacity / 2)
        receiptsPerGeneration = max(1, recentCapacity * 2)
        self.logger = logger
    }

    private func remembered(_ key: MessageKey) -> Recent? { recent[key] ?? olderRecent[key] }

    /// Records a committed batch's messages, written receipts and known conversations. When the
    /// current generation of messages or receipts is full, both start a new one together: a
    /// message's receipts are written in its generation or a later one, so while a message is
    /// remembered as fresh, the receipts this run wrote for it are remembered too.
    private func remember(messages: [(MessageKey, Recent)], placedReceipts: [Int64], conversations: Set<Int64>) {
        for (k, r) in messages { recent[k] = r }
        for d in placedReceipts { placed.insert(d) }
        if recent.count >= messagesPerGeneration || placed.count >= receiptsPerGeneration {
            olderRecent = recent
            recent = [:]
            olderPlaced = placed
            placed = []
        }
        if knownConversations.count + conversations.count > messagesPerGeneration { knownConversations = [] }
        knownConversations.formUnion(conversations)
    }

    private func isPlaced(_ digest: Int64) -> Bool { placed.contains(digest) || olderPlaced.contains(digest) }

    /// Staging tables empty themselves at each batch's commit (`ON COMMIT DELETE ROWS` truncates
    /// in place); in strict mode (one transaction for everything) they are truncated between batches.
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

    /// Writes what the worker still holds back (deliveries waiting for their read); call after
    /// the last batch.
    func finish() throws -> Outcome {
        try flush([], EventIngester.LineSource(paths: []))
    }

    /// A new receipt's delivery held back from writing: if its read arrives within
    /// `holdBatches` batches, the receipt is written once, complete, instead of inserted and then
    /// updated (an update rewrites the row and its index entries).
    struct Held {
        var delivered: Int64?
        var read: Int64?
        var age: Int
    }
    static let holdBatches = 5
    private var held: [ReceiptKey: Held] = [:]

    /// The steps of a batch that have a fast way (plain COPY into the table) and a safe way
    /// (upserts through a staging table).
    enum Step: Int, CaseIterable {
        case messages, receipts, presence
    }

    /// After a step's fast way meets stored rows, the next batches take the safe way for that
    /// step directly: one batch after a first conflict, twice as many after each further
    /// conflict in a row, up to `maxSafeBatches`. A re-run of a file so wastes about one fast
    /// attempt per step in that many batches, and a stray duplicate costs one batch.
    static let maxSafeBatches = 16
    private var safeBatchesLeft = Array(repeating: 0, count: Step.allCases.count)
    private var safeBatchesNext = Array(repeating: 1, count: Step.allCases.count)

    /// Runs a step's fast way inside a savepoint; if it meets a stored row (unique violation),
    /// rolls back to the savepoint and runs the safe way.
    private func attempt(_ c: PostgresConnection, _ step: Step, outcome: inout Outcome, fast: () throws -> Void, safe: () throws -> Void) throws {
        let s = step.rawValue
        if safeBatchesLeft[s] > 0 {
            safeBatchesLeft[s] -= 1
            return try safe()
        }
        do {
            try c.transaction { _ in try fast() }
            safeBatchesNext[s] = 1
        } catch let e as PostgresError where e.sqlState == .uniqueViolation {
            logger.debug("\(step): some rows are stored already (\(e.message)); upserting them instead")
            safeBatchesLeft[s] = safeBatchesNext[s]
            safeBatchesNext[s] = min(safeBatchesNext[s] * 2, IngestWorker.maxSafeBatches)
            outcome.stepsUpserted += 1
            try safe()
        }
    }

    /// Checks a batch's references and applies its good events, in one transaction.
    ///
    /// Each step first tries the fast way: messages with their send dedup keys, presence, and
    /// the new receipts of messages this run inserted go straight into their tables with plain
    /// COPY, as if none of them were stored yet (true of a stream ingested once). If one is (a
    /// re-run, a duplicate event, another writer), COPY fails with a unique violation, and the
    /// step is rolled back to its savepoint and applied with upserts through a staging table.
    /// - Parameter events: the batch, in file order.
    /// - Returns: what was accepted, and the rejected events with their reasons (not yet written).
    func flush(_ events: [EventIngester.Line], _ source: EventIngester.LineSource) throws -> Outcome {
        guard !events.isEmpty || !held.isEmpty else { return Outcome() }
        var outcome = Outcome()
        let t0 = Date()
        var newMessages: [(MessageKey, Recent)] = []
        var placedReceipts: [Int64] = []
        var nextHeld: [ReceiptKey: Held] = [:]
        var seenConversations = Set<Int64>()
        try conn.transaction { c in
            // What the batch references, looked up in one query per kind.
            var convIDs = Set<Int64>(), userIDs = Set<Int64>(), msgKeys = Set<MessageKey>()
            for i in events.indices {
                switch events[i].event {
                case .join(let cv, let u, _, _): convIDs.insert(cv); userIDs.insert(u)
                case .leave(let cv, _, _): convIDs.insert(cv)
                case .message(let cv, _, _, _, _, _, _, _, _, _, _): convIDs.insert(cv)
                case .receipt(let cv, let m, _, _, _): convIDs.insert(cv); msgKeys.insert(MessageKey(cv, m))
                case .media(let cv, _, _, _, _, _): convIDs.insert(cv)
                default: break
                }
            }
            var knownConvs = Set<Int64>(), knownUsers = Set<Int64>()
            func isKnown(_ cv: Int64) -> Bool { knownConvs.contains(cv) || knownConversations.contains(cv) }
            var knownMessages: [MessageKey: Recent] = [:]
            convIDs.subtract(knownConversations)
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
            for k in msgKeys { if let r = remembered(k) { knownMessages[k] = r } }
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
                    knownMessages[MessageKey(try r.decode(Int64.self, at: 0), try r.decode(Int64.self, at: 1))] = Recent(sentAt: try r.decode(Int64.self, at: 2), fresh: false)
                }
            }
            var accepted: [Int] = []
            accepted.reserveCapacity(events.count)
            var sentAt = [Int64](repeating: 0, count: events.count)
            for i in events.indices {
                var reason: String?
                switch events[i].event {
                case .user(let id, _, _, _): knownUsers.insert(id)
                case .conversation(let id, _, _, _, _): knownConvs.insert(id)
                case .join(let cv, let u, _, _):
                    if !isKnown(cv) {
                        reason = "unknown conversation \(cv)"
                    } else if !knownUsers.contains(u) {
                        reason = "unknown user \(u)"
                    }
                case .leave(let cv, _, _), .media(let cv, _, _, _, _, _):
                    if !isKnown(cv) { reason = "unknown conversation \(cv)" }
                case .message(let cv, let id, _, let t, _, _, _, _, _, _, _):
                    // Fresh or not is known once the insert has run.
                    if !isKnown(cv) { reason = "unknown conversation \(cv)" } else { knownMessages[MessageKey(cv, id)] = Recent(sentAt: t, fresh: false) }
                case .receipt(let cv, let m, _, let at, _):
                    if !isKnown(cv) { reason = "unknown conversation \(cv)" } else if let t = knownMessages[MessageKey(cv, m)]?.sentAt {
                        sentAt[i] = t
                        if !ranges["receipts"]!.contains(where: { $0.0 <= t && t < $0.1 }) { reason = "the message's time is outside every receipts partition" }
                        if at < t { logger.debug("\(source.location(events[i])): receipt time before the message was sent (kept; the receipt audit reports it)") }
                    } else { reason = "receipt for unknown message \(cv):\(m)" }
                case .presence: break
                }
                if let reason {
                    outcome.rejects.append(source.reject(events[i], reason))
                    if strict { return }  // the caller reports the first bad line and rolls back
                } else {
                    accepted.append(i)
                }
            }
            seenConversations = knownConvs
            let t1 = Date()
            let buckets = try stage(c, events, accepted)
            let t2 = Date()
            for (slot, sql) in IngestWorker.applyStaged where !buckets[slot].isEmpty { try run(c, sql) }
            // Which messages this batch inserted (not those already there): their receipts are new.
            var inserted = Set<MessageKey>(), allInserted = false
            let messageRows = buckets[Slot.message]
            if !messageRows.isEmpty {
                try attempt(c, .messages, outcome: &outcome, fast: {
                    try copyMessages(c, events, messageRows)
                    allInserted = true
                }, safe: {
                    try copyRows(c, "COPY ingest_messages FROM STDIN", events, messageRows, IngestWorker.encodeMessage)
                    try run(c, IngestWorker.insertSendDedup)
                    for r in try c.query(SQL(unsafeRaw: IngestWorker.insertMessages)) {
                        inserted.insert(MessageKey(try r.decode(Int64.self, at: 0), try r.decode(Int64.self, at: 1)))
                    }
                })
            }
            for i in messageRows {
                guard case .message(let cv, let id, _, let t, _, _, _, _, _, _, _) = events[i].event else { continue }
                let k = MessageKey(cv, id), r = Recent(sentAt: t, fresh: allInserted || inserted.contains(k))
                knownMessages[k] = r
                newMessages.append((k, r))
            }
            let t3 = Date()
            let receipts = try applyReceipts(c, events, sentAt, buckets[Slot.receipt], knownMessages, hold: !strict && !events.isEmpty, outcome: &outcome)
            placedReceipts = receipts.digests
            nextHeld = receipts.held
            let presenceRows = buckets[Slot.presence]
            if !presenceRows.isEmpty {
                try attempt(c, .presence, outcome: &outcome, fast: {
                    try copyRows(c, "COPY chat.presence_events (user_id, occurred_at, device_id, state) FROM STDIN", events, presenceRows, IngestWorker.encodePresence)
                }, safe: {
                    try copyRows(c, "COPY ingest_presence FROM STDIN", events, presenceRows, IngestWorker.encodePresence)
                    try run(c, IngestWorker.applyPresence)
                })
            }
            logger.debug("batch of \(events.count): lookups \(ms(t0, t1)) ms, staging \(ms(t1, t2)) ms, messages \(ms(t2, t3)) ms, receipts and presence \(ms(t3, Date())) ms (receipts: \(receipts.copied) copied, \(receipts.upserted) upserted, \(nextHeld.count) held)")
            outcome.accepted += accepted.count
            for (slot, rows) in buckets.enumerated() where !rows.isEmpty && slot != Slot.receipt {
                outcome.byType[events[rows[0]].event.typeName, default: 0] += rows.count
            }
            let reads = buckets[Slot.receipt].count { if case .receipt(_, _, _, _, true) = events[$0].event { true } else { false } }
            if reads > 0 { outcome.byType["read", default: 0] += reads }
            if buckets[Slot.receipt].count > reads { outcome.byType["delivered", default: 0] += buckets[Slot.receipt].count - reads }
        }
        remember(messages: newMessages, placedReceipts: placedReceipts, conversations: seenConversations)
        held = nextHeld
        return outcome
    }

    private func ms(_ a: Date, _ b: Date) -> Int { Int(b.timeIntervalSince(a) * 1000) }

    /// Merges a batch's deliveries and reads per receipt (the earliest of each), then writes new
    /// receipts of fresh messages with plain COPY and upserts the rest.
    /// - Returns: how many were copied, and the digests of every receipt of a fresh message
    ///   (to remember once the batch commits).
    private func applyReceipts(_ c: PostgresConnection, _ events: [EventIngester.Line], _ sentAts: [Int64], _ rows: [Int],
                               _ known: [MessageKey: Recent], hold: Bool, outcome: inout Outcome)
        throws -> (copied: Int, upserted: Int, digests: [Int64], held: [ReceiptKey: Held]) {
        guard !rows.isEmpty || !held.isEmpty else { return (0, 0, [], [:]) }
        struct Pending {
            var delivered: Int64?
            var read: Int64?
            var age: Int
            let wasHeld: Bool
        }
        var merged: [ReceiptKey: Pending] = [:]
        merged.reserveCapacity(rows.count + held.count)
        var order: [ReceiptKey] = []
        for (k, h) in held {
            merged[k] = Pending(delivered: h.delivered, read: h.read, age: h.age + 1, wasHeld: true)
            order.append(k)
        }
        for i in rows {
            guard case .receipt(let cv, let m, let r, let at, let isRead) = events[i].event else { continue }
            let sentAt = sentAts[i]
            let k = ReceiptKey(conversation: cv, message: m, sentAt: sentAt, recipient: r)
            var v = merged[k] ?? { order.append(k); return Pending(age: 0, wasHeld: false) }()
            if isRead { v.read = min(v.read ?? at, at) } else { v.delivered = min(v.delivered ?? at, at) }
            merged[k] = v
        }
        // New receipts (of messages this run inserted, not yet written by it) can be copied in;
        // the rest may exist and are upserted.
        var copy: [ReceiptKey] = [], upsert: [ReceiptKey] = [], digests: [Int64] = []
        var stillHeld: [ReceiptKey: Held] = [:]
        for k in order {
            let v = merged[k]!
            // A held receipt is new by construction (its message fresh, the receipt not written).
            if v.wasHeld || known[MessageKey(k.conversation, k.message)]?.fresh == true {
                let d = k.digest
                if v.wasHeld || !isPlaced(d) {
                    if hold && v.read == nil && v.age < IngestWorker.holdBatches {
                        stillHeld[k] = Held(delivered: v.delivered, read: v.read, age: v.age)
                        continue
                    }
                    copy.append(k)
                    digests.append(d)
                    continue
                }
                digests.append(d)
            }
            upsert.append(k)
        }
        func write(_ keys: [ReceiptKey], _ sql: SQL, status: Bool) throws {
            guard !keys.isEmpty else { return }
            try c.copyIn(sql) { w in
                for k in keys {
                    let v = merged[k]!
                    w.append(k.conversation); w.append(k.message); w.appendTimestamp(microseconds: k.sentAt); w.append(k.recipient)
                    if status { w.append(Int64(v.read == nil ? 2 : 3)) }
                    w.appendTimestamp(microseconds: v.delivered); w.appendTimestamp(microseconds: v.read)
                    try w.endRow()
                }
            }
        }
        var copied = 0
        if !copy.isEmpty {
            try attempt(c, .receipts, outcome: &outcome, fast: {
                try write(copy, "COPY chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at) FROM STDIN", status: true)
                copied = copy.count
            }, safe: {
                upsert += copy
            })
        }
        if !upsert.isEmpty {
            try write(upsert, "COPY ingest_receipts FROM STDIN", status: false)
            try run(c, IngestWorker.upsertReceipts)
        }
        outcome.copiedReceipts += copied
        return (copied, upsert.count, digests, stillHeld)
    }

    private func run(_ c: PostgresConnection, _ script: String) throws {
        for s in SQLScript.split(script) {
            let t = Date()
            try c.execute(SQL(unsafeRaw: s.text))
            if logger.logLevel <= .debug { logger.debug("apply \(s.text.prefix(40)): \(ms(t, Date())) ms") }
        }
    }

    /// The staging tables' slots, in the order `stage` fills them.
    enum Slot {
        static let user = 0, conversation = 1, join = 2, leave = 3, media = 4, message = 5, receipt = 6, presence = 7
    }

    /// Sorts a batch's accepted events by table, and stages users, conversations, joins, leaves
    /// and media through COPY (messages, receipts and presence are written by their steps).
    /// - Returns: the events' indexes by slot (`Slot`).
    private func stage(_ c: PostgresConnection, _ events: [EventIngester.Line], _ accepted: [Int]) throws -> [[Int]] {
        if strict {
            try c.executeScript("""
                TRUNCATE ingest_users, ingest_conversations, ingest_joins, ingest_leaves, ingest_messages, ingest_receipts, ingest_presence, ingest_media
                """)
        }
        // One pass sorts the events by table; each COPY then reads only its own.
        var buckets = Array(repeating: [Int](), count: 8)
        for i in accepted {
            let slot: Int
            switch events[i].event {
            case .user: slot = Slot.user
            case .conversation: slot = Slot.conversation
            case .join: slot = Slot.join
            case .leave: slot = Slot.leave
            case .media: slot = Slot.media
            case .message: slot = Slot.message
            case .receipt: slot = Slot.receipt
            case .presence: slot = Slot.presence
            }
            buckets[slot].append(i)
        }
        func copy(_ table: String, _ slot: Int, _ encode: (Event, inout CopyInWriter) -> Bool) throws {
            try copyRows(c, SQL(unsafeRaw: "COPY \(table) FROM STDIN"), events, buckets[slot], encode)
        }
        try copy("ingest_users", Slot.user) { e, w in
            guard case .user(let id, let h, let d, let t) = e else { return false }
            w.append(id); w.append(h); w.append(d); w.appendTimestamp(microseconds: t); return true
        }
        try copy("ingest_conversations", Slot.conversation) { e, w in
            guard case .conversation(let id, let k, let title, let by, let t) = e else { return false }
            w.append(id); w.append(k); w.append(title); w.append(by); w.appendTimestamp(microseconds: t); return true
        }
        try copy("ingest_joins", Slot.join) { e, w in
            guard case .join(let cv, let u, let at, let role) = e else { return false }
            w.append(cv); w.append(u); w.appendTimestamp(microseconds: at); w.append(role); return true
        }
        try copy("ingest_leaves", Slot.leave) { e, w in
            guard case .leave(let cv, let u, let at) = e else { return false }
            w.append(cv); w.append(u); w.appendTimestamp(microseconds: at); return true
        }
        try copy("ingest_media", Slot.media) { e, w in
            guard case .media(let cv, let sha, let size, let mime, let name, let data) = e else { return false }
            w.append(cv); w.appendBytea(sha); w.append(size); w.append(mime); w.append(name)
            if let data { w.appendBytea(data) } else { w.appendNull() }
            return true
        }
        return buckets
    }

    /// COPYs the given events, each encoded by `encode` (which returns false to skip one).
    private func copyRows(_ c: PostgresConnection, _ sql: SQL, _ events: [EventIngester.Line], _ rows: [Int],
                          _ encode: (Event, inout CopyInWriter) -> Bool) throws {
        guard !rows.isEmpty else { return }
        try c.copyIn(sql) { w in
            for i in rows { if encode(events[i].event, &w) { try w.endRow() } }
        }
    }

    /// The fast way for messages: their send dedup keys, then the messages, by plain COPY.
    private func copyMessages(_ c: PostgresConnection, _ events: [EventIngester.Line], _ rows: [Int]) throws {
        try copyRows(c, "COPY chat.send_dedup (conversation_id, sender_id, client_message_id, message_id, sent_at) FROM STDIN", events, rows) { e, w in
            guard case .message(let cv, let id, let s, let t, _, _, _, let cid?, _, _, _) = e else { return false }
            w.append(cv); w.append(s); w.append(cid); w.append(id); w.appendTimestamp(microseconds: t); return true
        }
        try copyRows(c, """
            COPY chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at, deleted_at)
            FROM STDIN
            """, events, rows, IngestWorker.encodeMessage)
    }

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
                   CASE kind WHEN 'direct' THEN 2 ELSE 1024 END
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
            UPDATE chat.members m SET left_at = l.at
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

    /// Staged receipts (one row per receipt, merged by the client) that may already exist: a
    /// receipt never moves backwards, and only a change rewrites the row.
    static let upsertReceipts = """
            INSERT INTO chat.receipts AS r (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at)
            SELECT conversation_id, message_id, sent_at, recipient_id, CASE WHEN read_at IS NULL THEN 2 ELSE 3 END, delivered_at, read_at, now()
            FROM ingest_receipts
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
            """

    static let applyPresence = """
            INSERT INTO chat.presence_events (user_id, occurred_at, device_id, state)
            SELECT DISTINCT ON (user_id, occurred_at, device_id) user_id, occurred_at, device_id, state FROM ingest_presence
            ORDER BY user_id, occurred_at, device_id
            ON CONFLICT DO NOTHING;
            """
}
