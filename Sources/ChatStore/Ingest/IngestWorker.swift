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
    /// On Citus: the statements that read distributed tables for staged keys take their Citus
    /// forms (`IngestStatements`), and a batch runs its multi-shard work sequentially.
    let citus: Bool
    let logger: Logger
    let ranges: [String: [(Int64, Int64)]]
    /// Recent messages, receipts written and conversations seen (bounded).
    var memory: IngestMemory

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
        citus = (try? CitusPlan.isAvailable(connection)) ?? false
        self.ranges = ranges
        memory = IngestMemory(capacity: recentCapacity)
        self.logger = logger
    }

    /// Writes what the worker still holds back (deliveries waiting for their read); call after
    /// the last batch.
    func finish() throws -> Outcome {
        try flush([], EventIngester.LineSource(paths: []))
    }

    /// Deliveries of new receipts waiting for their read (see `Held`).
    var held: [ReceiptKey: Held] = [:]

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
    func attempt(_ c: PostgresConnection, _ step: Step, outcome: inout Outcome, fast: () throws -> Void, safe: () throws -> Void) throws {
        let s = step.rawValue
        if safeBatchesLeft[s] > 0 {
            safeBatchesLeft[s] -= 1
            return try safe()
        }
        do {
            try c.transaction { _ in try fast() }
            safeBatchesNext[s] = 1
        } catch let e as PostgresError where e.isUniqueViolation {
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
        // A deadlock or serialization failure with another writer (a second ingest of
        // overlapping files) rolls the batch back whole; it is tried again, up to three times.
        // The worker's memory changes only after a commit, so a retry starts from the same state.
        var attempt = 1
        while true {
            do {
                return try flushOnce(events, source)
            } catch let e as PostgresError where (e.sqlState == .deadlockDetected || e.sqlState == .serializationFailure) && attempt < 3 {
                logger.info("batch rolled back by a concurrent writer (\(e.message)); trying it again")
                Thread.sleep(forTimeInterval: 0.05 * Double(attempt) * Double.random(in: 1...2))
                attempt += 1
            }
        }
    }

    private func flushOnce(_ events: [EventIngester.Line], _ source: EventIngester.LineSource) throws -> Outcome {
        guard !events.isEmpty || !held.isEmpty else { return Outcome() }
        var outcome = Outcome()
        let t0 = Date()
        var newMessages: [(MessageKey, IngestMemory.Recent)] = []
        var placedReceipts: [Int64] = []
        var nextHeld: [ReceiptKey: Held] = [:]
        var seenConversations = Set<Int64>()
        try conn.transaction { c in
            // A transaction that ran a multi-shard statement in parallel may not then write a
            // reference table (users); sequential mode lets a batch do both.
            if citus { try c.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'") }
            var refs = try lookUp(c, events)
            let (accepted, sentAt) = check(events, source, &refs, &outcome)
            if strict && !outcome.rejects.isEmpty { return }  // the caller reports the first bad line and rolls back
            var knownMessages = refs.messages
            seenConversations = refs.conversations
            let t1 = Date()
            let ordered = IngestWorker.membersInFileOrder(events, accepted)
            let buckets = try stage(c, events, accepted, skippingMembers: ordered)
            let t2 = Date()
            for (slot, sql) in IngestWorker.applyStaged where !buckets[slot].isEmpty {
                try run(c, citus && slot == Slot.join ? IngestWorker.applyJoinsCitus : sql)
            }
            try applyMembershipInFileOrder(c, events, accepted, ordered, source, &outcome)
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
                    for r in try c.query(SQL(unsafeRaw: citus ? IngestWorker.insertMessagesCitus : IngestWorker.insertMessages)) {
                        inserted.insert(MessageKey(try r.decode(Int64.self, at: 0), try r.decode(Int64.self, at: 1)))
                    }
                })
            }
            for i in messageRows {
                guard case .message(let cv, let id, _, let t, _, _, _, _, _, _, _) = events[i].event else { continue }
                let k = MessageKey(cv, id), r = IngestMemory.Recent(sentAt: t, fresh: allInserted || inserted.contains(k))
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
        memory.remember(messages: newMessages, placedReceipts: placedReceipts, conversations: seenConversations)
        held = nextHeld
        return outcome
    }

    /// What a batch refers to that is known to exist: conversations, users, and messages with
    /// when each was sent (and whether this run inserted it).
    struct References {
        var conversations = Set<Int64>()
        var users = Set<Int64>()
        var messages: [MessageKey: IngestMemory.Recent] = [:]
        /// Media (conversation, sha256) that messages refer to.
        var media = Set<MediaKey>()
        /// Who holds each handle the batch's user events name (stored, or claimed earlier in the
        /// batch), so a taken handle is rejected by its line whatever the batching.
        var handles: [String: Int64] = [:]
    }

    struct MediaKey: Hashable {
        let conversation: Int64
        let sha256: [UInt8]
    }

    /// Looks up what a batch refers to, one query per kind; remembered conversations and
    /// messages are not looked up again.
    private func lookUp(_ c: PostgresConnection, _ events: [EventIngester.Line]) throws -> References {
        var refs = References()
        var convIDs = Set<Int64>(), userIDs = Set<Int64>(), msgKeys = Set<MessageKey>(), mediaKeys = Set<MediaKey>()
        var handles = Set<String>()
        for i in events.indices {
            switch events[i].event {
            case .user(let id, let h, _, _): handles.insert(h); userIDs.insert(id)
            case .join(let cv, let u, _, _): convIDs.insert(cv); userIDs.insert(u)
            case .conversation(_, _, _, let by?, _): userIDs.insert(by)
            case .leave(let cv, _, _): convIDs.insert(cv)
            case .message(let cv, _, _, _, _, _, _, _, let media, _, _):
                convIDs.insert(cv)
                if let media { mediaKeys.insert(MediaKey(conversation: cv, sha256: media)) }
            case .receipt(let cv, let m, _, _, _): convIDs.insert(cv); msgKeys.insert(MessageKey(cv, m))
            case .media(let cv, _, _, _, _, _): convIDs.insert(cv)
            default: break
            }
        }
        convIDs.subtract(memory.conversations)
        if !convIDs.isEmpty {
            for r in try c.query("SELECT conversation_id FROM chat.conversations WHERE conversation_id = ANY(\(Array(convIDs)))") {
                refs.conversations.insert(try r.decode(Int64.self, at: 0))
            }
        }
        if !userIDs.isEmpty {
            for r in try c.query("SELECT user_id FROM chat.users WHERE user_id = ANY(\(Array(userIDs)))") { refs.users.insert(try r.decode(Int64.self, at: 0)) }
        }
        if !handles.isEmpty {
            // The handles as a bound JSON array (text, so no quoting of ours).
            let list = String(decoding: try JSONSerialization.data(withJSONObject: Array(handles)), as: UTF8.self)
            for r in try c.query("SELECT handle, user_id FROM chat.users WHERE handle IN (SELECT jsonb_array_elements_text(\(JSONB(list))))") {
                refs.handles[try r.decode(String.self, at: 0)] = try r.decode(Int64.self, at: 1)
            }
        }
        if !mediaKeys.isEmpty {
            // Which of the keys exist, by their position in the list sent.
            let keys = Array(mediaKeys)
            let cvs = keys.map(\.conversation), shas = keys.map { SHA256.Digest(bytes: $0.sha256).hex }.joined(separator: ",")
            // IN over the list, not a correlated EXISTS: Citus sends the list to the shards.
            for r in try c.query("""
                SELECT m.conversation_id, m.sha256 FROM chat.media m
                WHERE (m.conversation_id, m.sha256) IN (
                    SELECT k.cv, decode(k.sha, 'hex') FROM unnest(\(cvs)::bigint[], string_to_array(\(shas)::text, ',')) k(cv, sha))
                """) {
                let key = MediaKey(conversation: try r.decode(Int64.self, at: 0), sha256: [UInt8](try r.decode(Data.self, at: 1)))
                if mediaKeys.contains(key) { refs.media.insert(key) }
            }
        }
        // Receipts mostly follow their messages closely: recently ingested messages are
        // remembered (bounded), and only the rest are looked up, by index probes.
        for k in msgKeys { if let r = memory.message(k) { refs.messages[k] = r } }
        msgKeys.subtract(refs.messages.keys)
        if !msgKeys.isEmpty {
            try c.execute("SET LOCAL enable_hashjoin = off")
            try c.execute("SET LOCAL enable_mergejoin = off")
            defer { _ = try? c.execute("SET LOCAL enable_hashjoin = on"); _ = try? c.execute("SET LOCAL enable_mergejoin = on") }
            let cvs = msgKeys.map(\.conversation), ms = msgKeys.map(\.message)
            for r in try c.query("""
                SELECT m.conversation_id, m.message_id, (extract(epoch FROM m.sent_at) * 1000000)::bigint AS us
                FROM chat.messages m
                WHERE (m.conversation_id, m.message_id) IN (SELECT k.cv, k.mid FROM unnest(\(cvs)::bigint[], \(ms)::bigint[]) k(cv, mid))
                """) {
                refs.messages[MessageKey(try r.decode(Int64.self, at: 0), try r.decode(Int64.self, at: 1))] =
                    IngestMemory.Recent(sentAt: try r.decode(Int64.self, at: 2), fresh: false)
            }
        }
        return refs
    }

    /// Checks each event against what exists and what the batch itself adds before it, in file
    /// order. Rejects go to `outcome` (in strict mode it stops at the first).
    /// - Returns: the accepted events' indexes, and each receipt's message send time by index.
    private func check(_ events: [EventIngester.Line], _ source: EventIngester.LineSource, _ refs: inout References,
                       _ outcome: inout Outcome) -> (accepted: [Int], sentAt: [Int64]) {
        var accepted: [Int] = []
        accepted.reserveCapacity(events.count)
        var sentAt = [Int64](repeating: 0, count: events.count)
        func isKnown(_ cv: Int64) -> Bool { refs.conversations.contains(cv) || memory.conversations.contains(cv) }
        for i in events.indices {
            var reason: String?
            switch events[i].event {
            case .user(let id, let h, _, _):
                if let holder = refs.handles[h], holder != id {
                    reason = "handle \"\(h.prefix(40))\" is already taken by user \(holder)"
                } else if refs.users.contains(id) {
                    // A user already stored (a re-run): nothing to add, and its handle stays.
                } else {
                    refs.users.insert(id); refs.handles[h] = id
                }
            case .conversation(let id, _, _, let by, _):
                if let by, !refs.users.contains(by) { reason = "unknown user \(by) (created_by)" } else { refs.conversations.insert(id) }
            case .join(let cv, let u, _, _):
                if !isKnown(cv) {
                    reason = "unknown conversation \(cv)"
                } else if !refs.users.contains(u) {
                    reason = "unknown user \(u)"
                }
            case .leave(let cv, _, _):
                if !isKnown(cv) { reason = "unknown conversation \(cv)" }
            case .media(let cv, let sha, _, _, _, _):
                if !isKnown(cv) { reason = "unknown conversation \(cv)" } else { refs.media.insert(MediaKey(conversation: cv, sha256: sha)) }
            case .message(let cv, let id, _, let t, _, _, _, _, let media, _, _):
                if !isKnown(cv) {
                    reason = "unknown conversation \(cv)"
                } else if let media, !refs.media.contains(MediaKey(conversation: cv, sha256: media)) {
                    reason = "unknown media \(SHA256.Digest(bytes: media).hex) in conversation \(cv)"
                } else {
                    // Fresh or not is known once the insert has run.
                    refs.messages[MessageKey(cv, id)] = IngestMemory.Recent(sentAt: t, fresh: false)
                }
            case .receipt(let cv, let m, _, let at, _):
                if !isKnown(cv) { reason = "unknown conversation \(cv)" } else if let t = refs.messages[MessageKey(cv, m)]?.sentAt {
                    sentAt[i] = t
                    if !ranges["receipts"]!.contains(where: { $0.0 <= t && t < $0.1 }) { reason = "the message's time is outside every receipts partition" }
                    if at < t { logger.debug("\(source.location(events[i])): receipt time before the message was sent (kept; the receipt audit reports it)") }
                } else { reason = "receipt for unknown message \(cv):\(m)" }
            case .presence: break
            }
            if let reason {
                outcome.rejects.append(source.reject(events[i], reason))
                if strict { break }
            } else {
                accepted.append(i)
            }
        }
        return (accepted, sentAt)
    }

    private func ms(_ a: Date, _ b: Date) -> Int { Int(b.timeIntervalSince(a) * 1000) }

    func run(_ c: PostgresConnection, _ script: String) throws {
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
    /// The (conversation, user) pairs whose joins and leaves this batch applies one by one in file
    /// order: those with a leave, or with more than one membership event. Set-based statements
    /// would apply a batch's joins before its leaves (a rejoin after a leave in the same batch
    /// would be lost, a leave before its join applied), so the stored memberships would depend
    /// on where batches are cut; in file order they do not. Other pairs (one join) are set-based.
    static func membersInFileOrder(_ events: [EventIngester.Line], _ accepted: [Int]) -> Set<[Int64]> {
        var count: [[Int64]: Int] = [:]
        var withLeave = Set<[Int64]>()
        for i in accepted {
            switch events[i].event {
            case .join(let cv, let u, _, _): count[[cv, u], default: 0] += 1
            case .leave(let cv, let u, _): count[[cv, u], default: 0] += 1; withLeave.insert([cv, u])
            default: break
            }
        }
        return withLeave.union(count.filter { $0.value > 1 }.keys)
    }

    /// Applies the joins and leaves of `keys` one event at a time, in file order. A leave that
    /// closes no open membership (before its join, or of someone who never joined) is rejected
    /// by its line: nothing would be stored for it.
    private func applyMembershipInFileOrder(_ c: PostgresConnection, _ events: [EventIngester.Line], _ accepted: [Int], _ keys: Set<[Int64]>,
                                            _ source: EventIngester.LineSource, _ outcome: inout Outcome) throws {
        guard !keys.isEmpty else { return }
        var rejected = false
        for i in accepted {
            switch events[i].event {
            case .join(let cv, let u, let at, let role) where keys.contains([cv, u]):
                let t = Date(timeIntervalSince1970: Double(at) / 1e6)
                try c.execute("""
                    INSERT INTO chat.members (conversation_id, user_id, joined_at, role)
                    SELECT \(cv), \(u), \(t), \(role)
                    WHERE NOT EXISTS (SELECT 1 FROM chat.members m WHERE m.conversation_id = \(cv) AND m.user_id = \(u) AND m.left_at IS NULL AND m.joined_at <= \(t))
                    ON CONFLICT DO NOTHING
                    """)
            case .leave(let cv, let u, let at) where keys.contains([cv, u]):
                let t = Date(timeIntervalSince1970: Double(at) / 1e6)
                let closed = try c.execute("""
                    UPDATE chat.members SET left_at = \(t), change_xid = DEFAULT
                    WHERE conversation_id = \(cv) AND user_id = \(u) AND left_at IS NULL AND joined_at <= \(t)
                    """).affectedRows
                // A membership that this very leave closed already (a re-run) is no error.
                if closed == 0, try !c.scalar(Bool.self, """
                    SELECT EXISTS (SELECT 1 FROM chat.members WHERE conversation_id = \(cv) AND user_id = \(u) AND left_at = \(t))
                    """) {
                    outcome.rejects.append(source.reject(events[i], "no membership of user \(u) in conversation \(cv) is open at \(PostgresTimestamp.format(microsecondsSinceEpoch: at)) (a leave must come after its join in the stream)"))
                    outcome.accepted -= 1
                    rejected = true
                }
            default: break
            }
        }
        if rejected { outcome.rejects.sort { ($0.file, $0.line) < ($1.file, $1.line) } }
    }

    private func stage(_ c: PostgresConnection, _ events: [EventIngester.Line], _ accepted: [Int], skippingMembers ordered: Set<[Int64]> = []) throws -> [[Int]] {
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
            guard case .join(let cv, let u, let at, let role) = e, !ordered.contains([cv, u]) else { return false }
            w.append(cv); w.append(u); w.appendTimestamp(microseconds: at); w.append(role); return true
        }
        try copy("ingest_leaves", Slot.leave) { e, w in
            guard case .leave(let cv, let u, let at) = e, !ordered.contains([cv, u]) else { return false }
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
    func copyRows(_ c: PostgresConnection, _ sql: SQL, _ events: [EventIngester.Line], _ rows: [Int],
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
}
