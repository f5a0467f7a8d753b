import ChatStorePostgres
import ChatStoreZstd
import Foundation
import Logging

/// Settings of a synthetic workload. See docs/generator.md for every distribution.
public struct WorkloadConfig: Codable, Sendable {
    public var users: Int
    public var days: Int
    public var seed: UInt64 = 1
    /// First day (UTC midnight). Default: `days` days before today.
    public var start: Date
    /// Mean messages sent per user per day (individual rates are skewed around it).
    public var messagesPerUserDay: Double = 8
    /// Probability that a receipt is corrupted by one planted anomaly.
    public var anomalyRate: Double = 0.002
    /// Fraction of messages that carry media.
    public var mediaFraction: Double = 0.03
    /// Fraction of users who go offline for the last days of the window (their messages stay undelivered).
    public var offlineFraction: Double = 0.03

    public init(users: Int, days: Int, seed: UInt64 = 1, start: Date? = nil) {
        self.users = users
        self.days = days
        self.seed = seed
        let today = PartitionGranularity.day.floor(Date())
        self.start = start.map { PartitionGranularity.day.floor($0) } ?? today.addingTimeInterval(-Double(days) * 86_400)
    }
}

/// Generates a realistic messaging workload deterministically from a seed and loads it through
/// COPY: users, direct and group conversations, membership with joins and leaves, media blobs,
/// messages with bursts, replies, edits and deletes, per-recipient receipts with long-tailed delays,
/// presence sessions consistent with activity, and planted receipt anomalies with an answer key.
public struct WorkloadGenerator {
    public let config: WorkloadConfig
    public let logger: Logger

    public init(config: WorkloadConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// Statistics of a load.
    public struct Report: Codable, Sendable {
        public var answerKey: AnswerKey
        public var rows: Int
        public var seconds: Double
        public var rowsPerSecond: Double
    }

    // MARK: - Model

    struct Member {
        var user: Int
        var joined: Int64      // microseconds
        var left: Int64?
        var role: String
    }

    struct Conversation {
        var id: Int64
        var isGroup: Bool
        var members: [Member]
        var rate: Double = 0
        var media: [[UInt8]] = []   // sha256 of each blob in its pool
    }

    static let epoch2020: Int64 = 1_577_836_800_000
    static let usPerDay: Int64 = 86_400_000_000
    static let hourWeights: [Double] = [2, 1.2, 0.7, 0.5, 0.5, 0.8, 1.8, 3.5, 5, 5.5, 5.5, 6, 6.5, 6, 5.5, 5.5, 6, 6.5, 7.5, 8.5, 9, 8.5, 6.5, 4]
    static let words: [[UInt8]] = ("ok yes no maybe see you tomorrow tonight at the station office home lol haha thanks "
        + "did you get my message call me when free sure sounds good meeting moved to 3pm running late "
        + "where are you love it 👍 😂 🎉 great idea let's go dinner lunch coffee photo video here now later")
        .split(separator: " ").map { Array($0.utf8) }

    /// Generates and loads the workload.
    /// - Parameters:
    ///   - settings: where to connect (three connections stream messages, receipts and presence at once).
    ///   - progress: called with (rows so far, messages so far) about every 100,000 rows. The
    ///     generator also reports its phases through `Progress` (each day, its commit, analyze).
    /// - Throws: `PostgresError` (the server refused rows) or `PartitionError`.
    public func load(settings: ConnectionSettings, progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        let t0 = Date()
        let cfg = config
        let startUS = Int64(cfg.start.timeIntervalSince1970) * 1_000_000
        let endUS = startUS + Int64(cfg.days) * WorkloadGenerator.usPerDay
        var rng = SeededRandom(seed: cfg.seed)
        let main = try PostgresConnection(settings: settings, logger: logger)

        // Partitions for the whole window (plus a day for late deliveries and duplicates).
        var pm = PartitionManager(logger: logger)
        pm.minimumAhead = 0
        try pm.ensureRange(main, from: cfg.start, until: Date(timeIntervalSince1970: Double(endUS) / 1e6 + 86_400))

        // Users with skewed activity weights.
        let n = cfg.users
        var weight = [Double](repeating: 1, count: n + 1)
        for u in 1...n { weight[u] = min(rng.pareto(alpha: 1.3), 200) }
        weight[0] = 0
        let meanWeight = weight.reduce(0, +) / Double(n)
        let picker = WeightedPicker(weight)
        var offlineFrom = [Int64?](repeating: nil, count: n + 1)
        for u in 1...n where rng.chance(cfg.offlineFraction) {
            offlineFrom[u] = endUS - Int64(rng.uniform() * Double(min(cfg.days, 4)) * Double(WorkloadGenerator.usPerDay))
        }

        // Conversations: directs by contact count, groups of skewed size.
        var convs: [Conversation] = []
        var pairs = Set<Int>()
        let longAgo = startUS - 30 * WorkloadGenerator.usPerDay
        for u in 1...n {
            let contacts = min(1 + Int(weight[u] / meanWeight * 2), 40)
            for _ in 0..<contacts {
                let v = picker.pick(&rng)
                guard v != u, n > 1 else { continue }
                let key = min(u, v) * (n + 1) + max(u, v)
                guard pairs.insert(key).inserted else { continue }
                convs.append(Conversation(id: Int64(convs.count + 1), isGroup: false,
                                          members: [Member(user: u, joined: longAgo, left: nil, role: "member"),
                                                    Member(user: v, joined: longAgo, left: nil, role: "member")]))
            }
        }
        let groups = n >= 3 ? max(1, n / 8) : 0
        for _ in 0..<groups {
            let size = min(n, max(3, min(Int(3 * rng.pareto(alpha: 1.1)), rng.chance(0.01) ? 400 : 256)))
            var chosen = Set<Int>()
            var order: [Int] = []
            var tries = 0
            while order.count < size && tries < size * 20 {
                tries += 1
                let v = rng.chance(0.5) ? picker.pick(&rng) : 1 + rng.int(n)
                if chosen.insert(v).inserted { order.append(v) }
            }
            var members: [Member] = []
            for (i, v) in order.enumerated() {
                var joined = longAgo
                if i > 0 && rng.chance(0.15) { joined = startUS + Int64(rng.uniform() * Double(endUS - startUS)) }
                var left: Int64?
                if i > 0 && rng.chance(0.07) { left = max(joined, startUS) + Int64(rng.uniform() * Double(endUS - max(joined, startUS))) }
                members.append(Member(user: v, joined: joined, left: left, role: i == 0 ? "owner" : "member"))
            }
            convs.append(Conversation(id: Int64(convs.count + 1), isGroup: true, members: members))
        }
        // Daily message rate per conversation, proportional to its members' weights.
        var totalRate = 0.0
        for i in convs.indices {
            let w = convs[i].members.map { weight[$0.user] }.reduce(0, +)
            convs[i].rate = convs[i].isGroup ? w * 0.35 : w
            totalRate += convs[i].rate
        }
        let scale = Double(n) * cfg.messagesPerUserDay / max(totalRate, 1e-9)
        for i in convs.indices { convs[i].rate *= scale }

        var key = AnswerKey(seed: cfg.seed, users: n, conversations: convs.count, members: 0, messages: 0, receipts: 0,
                            presenceEvents: 0, media: 0, anomalies: Dictionary(uniqueKeysWithValues: AnswerKey.Category.allCases.map { ($0.rawValue, 0) }),
                            unread: .init(total: 0, pairs: 0, checksum: 0), undelivered: 0)

        // Static tables in one transaction.
        Progress.report("generate: users, conversations, members, media", done: 0, total: nil, unit: "rows")
        try main.transaction { c in
            try c.copyIn("COPY chat.users (user_id, handle, display_name, created_at) FROM STDIN") { w in
                for u in 1...n {
                    w.append(Int64(u)); w.append("user\(u)"); w.append("User \(u)"); w.appendTimestamp(microseconds: longAgo - 86_400_000_000)
                    try w.endRow()
                }
            }
            try c.copyIn("COPY chat.conversations (conversation_id, kind, title, created_by, created_at, member_limit) FROM STDIN") { w in
                for cv in convs {
                    w.append(cv.id); w.append(cv.isGroup ? "group" : "direct"); w.append(cv.isGroup ? "Group \(cv.id)" : nil)
                    w.append(Int64(cv.members[0].user)); w.appendTimestamp(microseconds: longAgo); w.append(cv.isGroup ? Int64(1024) : 2)
                    try w.endRow()
                }
            }
            key.members = try c.copyIn("COPY chat.members (conversation_id, user_id, joined_at, left_at, role) FROM STDIN") { w in
                for cv in convs {
                    for m in cv.members {
                        w.append(cv.id); w.append(Int64(m.user)); w.appendTimestamp(microseconds: m.joined)
                        w.appendTimestamp(microseconds: m.left); w.append(m.role)
                        try w.endRow()
                    }
                }
            }
            // Media pools: about a third as many blobs as expected media messages (forwarded
            // media repeats), half compressible text stored zstd-compressed, half incompressible.
            key.media = try c.copyIn("COPY chat.media (conversation_id, sha256, size_bytes, mime_type, file_name, encoding, bytes, created_at) FROM STDIN") { w in
                for i in convs.indices {
                    let expected = convs[i].rate * Double(cfg.days) * cfg.mediaFraction
                    let pool = expected < 0.3 ? 0 : min(12, 1 + Int(expected / 3))
                    for j in 0..<pool {
                        var r = SeededRandom.stream(cfg.seed, UInt64(convs[i].id), UInt64(j) + 1)
                        let size = min(32_768, max(256, Int(r.logNormal(median: 2_000, sigma: 0.8))))
                        let compressible = r.chance(0.5)
                        var blob = [UInt8](); blob.reserveCapacity(size)
                        if compressible {
                            while blob.count < size { blob += WorkloadGenerator.words[r.int(WorkloadGenerator.words.count)]; blob.append(32) }
                            blob = Array(blob.prefix(size))
                        } else {
                            while blob.count < size { var x = r.next(); withUnsafeBytes(of: &x) { blob += $0 } }
                            blob = Array(blob.prefix(size))
                        }
                        let sha = SHA256.hash(blob).bytes
                        convs[i].media.append(sha)
                        var stored = blob
                        var encoding = "none"
                        if compressible, let z = try? Zstd.compress(blob), z.count < blob.count { stored = z; encoding = "zstd" }
                        w.append(convs[i].id); w.appendBytea(sha); w.append(Int64(size))
                        w.append(compressible ? "text/plain" : "image/jpeg"); w.append("media-\(convs[i].id)-\(j)\(compressible ? ".txt" : ".jpg")")
                        w.append(encoding); w.appendBytea(stored); w.appendTimestamp(microseconds: longAgo)
                        try w.endRow()
                    }
                }
            }
        }

        // Streams for the big tables, on their own connections.
        // Receipts are most of the rows: two connections take them (conversations split by parity),
        // so two server backends share the index and constraint work.
        // Each stream is sent by its own thread (256 KiB chunks, up to 8 queued): one busy backend
        // does not leave the others waiting for data.
        let stream = (chunk: 256 << 10, queue: 8)
        let rc = try PostgresConnection(settings: settings, logger: logger)
        let rc2 = try PostgresConnection(settings: settings, logger: logger)
        let pc = try PostgresConnection(settings: settings, logger: logger)
        func receipt(_ even: inout CopyInWriter, _ odd: inout CopyInWriter, _ cv: Int64, _ mid: Int64, _ sentAt: Int64, _ user: Int,
                     _ status: Int64, _ delivered: Int64?, _ read: Int64?, _ updated: Int64) throws {
            func row(_ w: inout CopyInWriter) throws {
                w.append(cv); w.append(mid); w.appendTimestamp(microseconds: sentAt); w.append(Int64(user))
                w.append(status); w.appendTimestamp(microseconds: delivered); w.appendTimestamp(microseconds: read)
                w.appendTimestamp(microseconds: updated)
                try w.endRow()
            }
            if cv & 1 == 0 { try row(&even) } else { try row(&odd) }
        }
        var unread: [Int: Int] = [:]            // (conversation index * (n+1) + user) → count
        var rows = 0
        let hourPicker = WeightedPicker(WorkloadGenerator.hourWeights)
        var seq: Int64 = 0
        // When each user was active, for the presence sessions of each finished day.
        var activity = ActivityDays(users: n, startUS: startUS)

        var body: [UInt8] = []
        let expected = Int64(Double(cfg.users * cfg.days) * cfg.messagesPerUserDay)
        // One day per COPY on each stream, each its own transaction: what a backend holds for a
        // statement (the queue of per-row foreign-key checks fired at its end, its share of WAL)
        // is one day's, whatever the window, and a day is visible as soon as it is committed.
        for d in 0..<cfg.days {
            let dayPhase = "generate: day \(d + 1)/\(cfg.days)"
            Progress.report(dayPhase, done: Int64(key.messages), total: expected, unit: "messages")
            try main.copyIn("COPY chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at, deleted_at) FROM STDIN", flushThreshold: stream.chunk, backgroundQueue: stream.queue) { mw in
                try rc.copyIn("COPY chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at) FROM STDIN", flushThreshold: stream.chunk, backgroundQueue: stream.queue) { rwEven in
                try rc2.copyIn("COPY chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at) FROM STDIN", flushThreshold: stream.chunk, backgroundQueue: stream.queue) { rwOdd in
                    try pc.copyIn("COPY chat.presence_events (user_id, occurred_at, device_id, state) FROM STDIN", flushThreshold: stream.chunk, backgroundQueue: stream.queue) { pw in
                        let dayStart = startUS + Int64(d) * WorkloadGenerator.usPerDay
                        let dayFactor = (d % 7 == 5 || d % 7 == 6) ? 0.8 : 1.05
                        for ci in convs.indices {
                            let cv = convs[ci]
                            let count = rng.poisson(cv.rate * dayFactor)
                            guard count > 0 else { continue }
                            // Times from the daily rhythm, with bursts of follow-ups seconds apart.
                            var times: [Int64] = []
                            times.reserveCapacity(count)
                            while times.count < count {
                                let t = dayStart + Int64(hourPicker.pick(&rng)) * 3_600_000_000 + Int64(rng.uniform() * 3_600_000_000)
                                times.append(t)
                                var b = t
                                while times.count < count && rng.chance(0.35) {
                                    b += Int64(rng.logNormal(median: 8, sigma: 0.8) * 1_000_000)
                                    if b < dayStart + WorkloadGenerator.usPerDay { times.append(b) }
                                }
                            }
                            times.sort()
                            var recent: [Int64] = []
                            var lastSender = -1
                            for t in times {
                                let active = cv.members.filter { $0.joined <= t && ($0.left == nil || t < $0.left!) }
                                guard active.count >= 2 else { continue }
                                var sender = (lastSender >= 0 && rng.chance(0.5) && active.contains { $0.user == lastSender })
                                    ? lastSender : active[rng.int(active.count)].user
                                if let off = offlineFrom[sender], t >= off {
                                    guard let alt = active.first(where: { offlineFrom[$0.user].map { t < $0 } ?? true }) else { continue }
                                    sender = alt.user
                                }
                                lastSender = sender
                                seq += 1
                                let ms = t / 1000
                                let mid = ((ms - WorkloadGenerator.epoch2020) << 22) | (seq & 0x3F_FFFF)
                                var kind = "text"
                                var media: [UInt8]?
                                if cv.isGroup && rng.chance(0.01) { kind = "system" } else if !cv.media.isEmpty && rng.chance(cfg.mediaFraction) {
                                    kind = "media"; media = cv.media[rng.int(cv.media.count)]
                                }
                                let reply = !recent.isEmpty && rng.chance(0.15) ? recent[rng.int(recent.count)] : nil
                                let edited = rng.chance(0.03) ? t + Int64(rng.logNormal(median: 60, sigma: 1) * 1e6) : nil
                                let deleted = rng.chance(0.01) ? t + Int64(rng.logNormal(median: 300, sigma: 1.5) * 1e6) : nil
                                mw.append(cv.id); mw.append(mid); mw.appendTimestamp(microseconds: t); mw.append(Int64(sender)); mw.append(kind)
                                body.removeAll(keepingCapacity: true)
                                let nw = kind == "system" ? 3 : max(1, min(60, Int(rng.logNormal(median: 6, sigma: 0.7))))
                                for k in 0..<nw { if k > 0 { body.append(32) }; body += WorkloadGenerator.words[rng.int(WorkloadGenerator.words.count)] }
                                mw.appendRawField(body)
                                mw.append(reply); mw.append("c\(mid)")
                                if let media { mw.appendBytea(media) } else { mw.appendNull() }
                                mw.appendTimestamp(microseconds: edited); mw.appendTimestamp(microseconds: deleted)
                                try mw.endRow()
                                key.messages += 1
                                rows += 1
                                recent.append(mid)
                                if recent.count > 20 { recent.removeFirst() }
                                activity.note(sender, t)

                                // Receipts for every other member active at send time.
                                var extraUsers = Set<Int>()
                                for m in active where m.user != sender {
                                    var delivered: Int64? = t + Int64(rng.logNormal(median: 1.5, sigma: 2.2) * 1e6)
                                    if let off = offlineFrom[m.user], off <= delivered! { delivered = nil }
                                    if let dl = delivered, dl >= endUS { delivered = nil }
                                    var read: Int64?
                                    if let dl = delivered, rng.chance(0.85) {
                                        read = dl + Int64(rng.logNormal(median: 240, sigma: 2.0) * 1e6)
                                        if read! >= endUS || (offlineFrom[m.user].map { read! >= $0 } ?? false) { read = nil }
                                    }
                                    var status: Int64 = read != nil ? 3 : (delivered != nil ? 2 : 1)
                                    var isRead = read != nil
                                    var emit = true
                                    var extra: [(user: Int, sentAt: Int64)] = []
                                    if rng.chance(cfg.anomalyRate) {
                                        let cats = AnswerKey.Category.allCases
                                        var cat = cats[rng.int(cats.count)]
                                        // Categories that need a read (or a delivery) fall back when there is none.
                                        if (cat == .readWithoutDelivered || cat == .readBeforeDelivered || cat == .statusBehindTimes) && read == nil {
                                            cat = .missingReceipt
                                        }
                                        if cat == .deliveredBeforeSent && delivered == nil { cat = .senderReceipt }
                                        switch cat {
                                        case .readWithoutDelivered: delivered = nil
                                        case .readBeforeDelivered: read = delivered! - 1_000_000 - Int64(rng.int(60_000_000))
                                            if read! <= t { read = delivered! - 1; if read! <= t { cat = .missingReceipt; emit = false } }
                                        case .deliveredBeforeSent: delivered = t - 1_000_000 - Int64(rng.int(600_000_000))
                                            if let r = read, r < delivered! { read = nil; status = 2; isRead = false }
                                        case .statusBehindTimes: status = 2
                                        case .senderReceipt:
                                            if extraUsers.insert(sender).inserted { extra.append((sender, t)) } else { cat = .missingReceipt }
                                        case .nonMemberReceipt:
                                            var outsider = 1 + rng.int(n)
                                            var guardCount = 0
                                            while cv.members.contains(where: { $0.user == outsider }) && guardCount < 50 { outsider = 1 + rng.int(n); guardCount += 1 }
                                            if cv.members.contains(where: { $0.user == outsider }) || !extraUsers.insert(outsider).inserted {
                                                cat = .missingReceipt
                                            } else { extra.append((outsider, t)) }
                                        case .duplicateReceipt:
                                            let shifted = (t + 1) % WorkloadGenerator.usPerDay == 0 ? t - 1 : t + 1
                                            extra.append((m.user, shifted))
                                        case .missingReceipt: emit = false
                                        }
                                        if cat == .missingReceipt { emit = false; isRead = false }
                                        key.anomalies[cat.rawValue, default: 0] += 1
                                    }
                                    if emit {
                                        try receipt(&rwEven, &rwOdd, cv.id, mid, t, m.user, status, delivered, read, read ?? delivered ?? t)
                                        key.receipts += 1
                                        rows += 1
                                        if status == 1 && delivered == nil && read == nil { key.undelivered += 1 }
                                    }
                                    for x in extra {
                                        // Extra rows copy the real receipt's state (a sender receipt is marked read).
                                        let isSender = x.user == sender
                                        let (xs, xd, xr): (Int64, Int64?, Int64?) = isSender ? (3, t, t) : (status, delivered, read)
                                        try receipt(&rwEven, &rwOdd, cv.id, mid, x.sentAt, x.user, xs, xd, xr, t)
                                        key.receipts += 1
                                        rows += 1
                                        if !isSender && status == 1 && delivered == nil && read == nil { key.undelivered += 1 }
                                    }
                                    if !isRead && deleted == nil && m.left == nil {
                                        unread[ci * (n + 1) + m.user, default: 0] += 1
                                    }
                                    if let dl = delivered, dl >= startUS, dl < endUS { activity.note(m.user, dl) }
                                    if let r = read, r >= startUS, r < endUS { activity.note(m.user, r) }
                                }
                                if rows % 100_000 < 64 {
                                    progress?(rows, key.messages)
                                    Progress.report(dayPhase, done: Int64(key.messages), total: expected, unit: "messages")
                                }
                            }
                        }
                        // Presence for the finished day: sessions around each user's activity.
                        key.presenceEvents += try writePresence(&activity, day: d, dayStart: dayStart, rng: &rng, writer: &pw)
                        // The day's COPYs end now: the server checks its rows' foreign keys and commits.
                        Progress.report("\(dayPhase): committing", done: Int64(key.messages), total: expected, unit: "messages")
                    }
                }
                }
            }
        }
        rows += key.presenceEvents + key.media + key.members + n + convs.count
        for (k, c) in unread where c > 0 {
            let ci = k / (n + 1), u = k % (n + 1)
            key.unread.total += c
            key.unread.pairs += 1
            key.unread.checksum &+= (convs[ci].id &* 1_000_003 &+ Int64(u)) &* Int64(c)
        }
        Progress.report("generate: analyze", done: Int64(key.messages), total: expected, unit: "messages")
        try main.execute("ANALYZE chat.messages, chat.receipts, chat.presence_events, chat.members")
        let secs = Date().timeIntervalSince(t0)
        return Report(answerKey: key, rows: rows, seconds: secs, rowsPerSecond: Double(rows) / max(secs, 1e-9))
    }

    /// Writes online/offline events for one day's activity: activities less than 30 minutes apart
    /// form one session, online shortly before the first and offline a little after the last.
    func writePresence(_ activity: inout ActivityDays, day: Int, dayStart: Int64, rng: inout SeededRandom, writer w: inout CopyInWriter) throws -> Int {
        let dayEnd = dayStart + WorkloadGenerator.usPerDay
        var written = 0
        try activity.drain(day: day) { user, acts in
            var lastOffline = dayStart - 1
            var i = 0
            while i < acts.count {
                let first = acts[i]
                var last = first
                i += 1
                while i < acts.count && acts[i] - last < 1_800_000_000 { last = acts[i]; i += 1 }
                let on = max(lastOffline + 1, max(dayStart, first - Int64(rng.int(60_000_000)) - 1))
                var off = min(dayEnd - 1, last + 30_000_000 + Int64(rng.int(270_000_000)))
                if i < acts.count { off = min(off, acts[i] - 1 - 60_000_000) }
                if off <= on { off = on + 1 }
                guard off < dayEnd else { continue }
                w.append(Int64(user)); w.appendTimestamp(microseconds: on); w.append("phone"); w.append("online"); try w.endRow()
                w.append(Int64(user)); w.appendTimestamp(microseconds: off); w.append("phone"); w.append("offline"); try w.endRow()
                written += 2
                lastOffline = off
            }
        }
        return written
    }
}
