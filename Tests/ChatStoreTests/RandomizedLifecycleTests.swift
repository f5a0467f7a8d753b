import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import ChatStoreZstd
import Foundation
import Testing

/// Time ranges taken through random lifecycles: late writes to live ranges (reads of old
/// messages, deletions, new messages, removed receipts), `archive export`, `partitions retire`,
/// `archive restore`, `nightly` with a retention, granularity changes, compliance exports of a
/// random user, and kill -9 of a retire, restore or export at a random instant followed at once
/// by the same command again.
///
/// After every step: every message and receipt ever written (with its latest content) is in
/// exactly one of the live partitions and the current verified archive of its range; no table is
/// left detached; `partitions status` finds nothing in the ledger that contradicts the catalog;
/// after a compliance export, its messages and receipts equal those recomputed over that union.
///
/// `CHATSTORE_LIFECYCLE_SEEDS=N` runs N seeds (default 4), `CHATSTORE_LIFECYCLE_STEPS=N` steps per
/// seed (default 24).
@Suite struct RandomizedLifecycleTests {
    static let seeds: [UInt64] = {
        let n = Int(ProcessInfo.processInfo.environment["CHATSTORE_LIFECYCLE_SEEDS"] ?? "") ?? 4
        return (1...max(1, n)).map { UInt64($0) * 104_729 }
    }()
    static let steps = Int(ProcessInfo.processInfo.environment["CHATSTORE_LIFECYCLE_STEPS"] ?? "") ?? 24
    static let days = 5

    static let messageColumns = "conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at, deleted_at"
    static let receiptColumns = "conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at"

    /// One row as a canonical JSON string (keys sorted), with its key; `record` (compliance
    /// export) left out.
    static func canonical(_ json: some Collection<UInt8>, receipt: Bool) throws -> (key: String, row: String) {
        var o = try JSONSerialization.jsonObject(with: Data(json)) as! [String: Any]
        o.removeValue(forKey: "record")
        // row_to_json writes bytea as "\\x0a0b...", archives as the hex digits alone.
        if let sha = o["media_sha256"] as? String, sha.hasPrefix("\\x") { o["media_sha256"] = String(sha.dropFirst(2)) }
        func field(_ name: String) -> String { o[name].map { "\($0)" } ?? "<no \(name) in \(String(decoding: Array(json), as: UTF8.self).prefix(200))>" }
        let key = receipt ? "\(field("conversation_id")):\(field("message_id")):\(field("recipient_id")):\(field("sent_at"))"
                          : "\(field("conversation_id")):\(field("message_id")):\(field("sent_at"))"
        let row = String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
        return (key, row)
    }

    /// The live rows of a table, or of one range of it, keyed.
    static func live(_ conn: PostgresConnection, receipts: Bool, where filter: String = "true") throws -> [String: String] {
        let cols = receipts ? receiptColumns : messageColumns
        var out: [String: String] = [:]
        // json_build_object, not row_to_json of a subquery: Citus names a pushed-down subquery's
        // columns f1, f2, ... in row_to_json.
        let object = cols.split(separator: ",").map { c in let c = c.trimmingCharacters(in: .whitespaces); return "'\(c)', \(c)" }.joined(separator: ", ")
        for r in try conn.query(SQL(unsafeRaw: "SELECT json_build_object(\(object))::text FROM chat.\(receipts ? "receipts" : "messages") WHERE \(filter)")) {
            let c = try canonical(Array(try r.decode(String.self, at: 0).utf8), receipt: receipts)
            out[c.key] = c.row
        }
        return out
    }

    struct Union {
        var messages: [String: String] = [:]
        var receipts: [String: String] = [:]
        var duplicates: [String] = []
        var fromArchives = 0
    }

    /// Live partitions plus the current archive of every range that is not live.
    static func union(_ conn: PostgresConnection) throws -> Union {
        var u = Union()
        u.messages = try live(conn, receipts: false)
        u.receipts = try live(conn, receipts: true)
        let ranges = try conn.query("""
            SELECT DISTINCT ON (partition_name) partition_name, path FROM chat.archives
            WHERE verified_at IS NOT NULL ORDER BY partition_name, archive_id DESC
            """).map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1)) }
        for (name, path) in ranges {
            let attached = try conn.scalar(Bool.self, "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(\("chat." + name)) AND inhparent = 'chat.messages'::regclass)")
            if attached { continue }
            u.fromArchives += 1
            for (file, isReceipt) in [("messages.ndjson.zst", false), ("receipts.ndjson.zst", true)] {
                var text: [UInt8] = []
                try ZstdDecompressor.decompressFile(path: path + "/" + file) { text.append(contentsOf: $0) }
                for line in text.split(separator: 10) {
                    let c = try canonical(line, receipt: isReceipt)
                    if isReceipt {
                        if u.receipts.updateValue(c.row, forKey: c.key) != nil { u.duplicates.append("receipt \(c.key) in \(path) and elsewhere") }
                    } else {
                        if u.messages.updateValue(c.row, forKey: c.key) != nil { u.duplicates.append("message \(c.key) in \(path) and elsewhere") }
                    }
                }
            }
        }
        return u
    }

    @Test(arguments: seeds) func everyRowIsInExactlyOnePlaceThroughRandomLifecycles(seed: UInt64) throws {
        let dir = try TestPaths.temporaryDirectory()
        try TestDatabase.migrated { conn, settings in
            var rng = SplitMix64(state: seed)
            try TestDatabase.generate(settings, users: 40, days: RandomizedLifecycleTests.days, seed: seed, anomalyRate: 0.01)
            let url = ["--database-url", settings.conninfo]
            let start = TestDatabase.generatorStart
            var truthMessages = try RandomizedLifecycleTests.live(conn, receipts: false)
            var truthReceipts = try RandomizedLifecycleTests.live(conn, receipts: true)
            var log: [String] = []

            func pick<T>(_ xs: [T]) -> T? { xs.isEmpty ? nil : xs[rng.int(xs.count)] }
            func chance(_ p: Double) -> Bool { rng.chance(p) }
            func livePartitions() throws -> [PartitionManager.Partition] {
                try PartitionManager(logger: TestDatabase.logger).partitions(conn, parent: "messages").filter { $0.from >= start && $0.to <= start.addingTimeInterval(Double(RandomizedLifecycleTests.days) * 86_400) }
            }
            func range(_ p: PartitionManager.Partition) -> String {
                "sent_at >= '\(PostgresTimestamp.format(p.from))' AND sent_at < '\(PostgresTimestamp.format(p.to))'"
            }
            /// Re-reads rows of a range the test just wrote into the truth.
            func refresh(_ filter: String) throws {
                for (k, v) in try RandomizedLifecycleTests.live(conn, receipts: false, where: filter) { truthMessages[k] = v }
                for (k, v) in try RandomizedLifecycleTests.live(conn, receipts: true, where: filter) { truthReceipts[k] = v }
            }
            /// Runs a command, maybe killed first at a random instant and then run again at once.
            func run(_ args: [String], killable: Bool, accept: Set<Int32> = [0]) throws {
                if killable && chance(0.35) {
                    let pid = try spawnCommand(TestPaths.binary, args + url)
                    let wait = Double(rng.int(250)) / 1000
                    Thread.sleep(forTimeInterval: wait)
                    kill(pid, SIGKILL)
                    let status = waitCommand(pid)
                    log.append("  killed after \(Int(wait * 1000)) ms (status \(status)); rerun at once")
                }
                let r = try runCommand(TestPaths.binary, args + url)
                #expect(accept.contains(r.status), "seed \(seed): \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)\n\(log.joined(separator: "\n"))")
            }
            func check(_ what: String) throws {
                let u = try RandomizedLifecycleTests.union(conn)
                let dups = u.duplicates.count
                #expect(dups == 0, "seed \(seed) after \(what): \(dups) rows twice, e.g. \(u.duplicates.prefix(2))\n\(log.joined(separator: "\n"))")
                let lostM = truthMessages.filter { u.messages[$0.key] != $0.value }.count, extraM = u.messages.keys.filter { truthMessages[$0] == nil }.count
                let lostR = truthReceipts.filter { u.receipts[$0.key] != $0.value }.count, extraR = u.receipts.keys.filter { truthReceipts[$0] == nil }.count
                #expect(lostM == 0 && extraM == 0 && lostR == 0 && extraR == 0,
                        "seed \(seed) after \(what): messages missing or changed \(lostM), extra \(extraM); receipts missing or changed \(lostR), extra \(extraR)\n\(log.joined(separator: "\n"))")
                let warnings = try PartitionManager(logger: TestDatabase.logger).status(conn).warnings.filter { $0.contains("chat.archives") || $0.contains("detached") || $0.contains("ledger") }
                #expect(warnings.isEmpty, "seed \(seed) after \(what): \(warnings)\n\(log.joined(separator: "\n"))")
            }
            try check("generate")

            for step in 0..<RandomizedLifecycleTests.steps {
                let roll = rng.next() % 100
                let parts = try livePartitions()
                switch roll {
                case 0..<30:
                    // Writes by a cooperating application to a live range.
                    guard let p = pick(parts) else { continue }
                    let f = range(p)
                    switch rng.next() % 4 {
                    case 0:
                        let n = try conn.execute(SQL(unsafeRaw: """
                            UPDATE chat.receipts SET status = 3, read_at = '\(PostgresTimestamp.format(p.to.addingTimeInterval(7200)))', updated_at = now(), change_xid = DEFAULT
                            WHERE (conversation_id, message_id, recipient_id, sent_at) IN (
                                SELECT conversation_id, message_id, recipient_id, sent_at FROM chat.receipts WHERE \(f) AND read_at IS NULL
                                ORDER BY md5(message_id::text || '\(rng.next())') LIMIT 3)
                            """)).affectedRows
                        log.append("\(step): late reads of \(n) receipts in \(p.name)")
                    case 1:
                        let n = try conn.execute(SQL(unsafeRaw: """
                            UPDATE chat.messages SET deleted_at = '\(PostgresTimestamp.format(p.to.addingTimeInterval(3600)))', change_xid = DEFAULT
                            WHERE (conversation_id, message_id, sent_at) IN (
                                SELECT conversation_id, message_id, sent_at FROM chat.messages WHERE \(f) AND deleted_at IS NULL
                                ORDER BY md5(message_id::text || '\(rng.next())') LIMIT 2)
                            """)).affectedRows
                        log.append("\(step): deleted \(n) messages in \(p.name)")
                    case 2:
                        // An INSERT ... SELECT sets change_xid itself (on Citus the default would be
                        // evaluated on a worker, with its transaction ids: docs/citus.md).
                        let (shift, tag, order) = (rng.next() % 1000, rng.next(), rng.next())
                        let n = try conn.transaction { c in
                            let xid = try c.scalar(Int64.self, "SELECT pg_current_xact_id()::text::bigint")
                            return try c.execute(SQL(unsafeRaw: """
                                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, client_message_id, change_xid)
                                SELECT conversation_id, message_id + 1 + \(shift), sent_at + interval '1 second', sender_id, 'text', 'late backlog ' || message_id, 'late-' || message_id || '-\(tag)', \(xid)
                                FROM chat.messages WHERE \(f) AND sent_at + interval '1 second' < '\(PostgresTimestamp.format(p.to))'
                                ORDER BY md5(message_id::text || '\(order)') LIMIT 2
                                ON CONFLICT DO NOTHING
                                """)).affectedRows
                        }
                        log.append("\(step): \(n) late messages into \(p.name)")
                    default:
                        // The keys first, then the delete (Citus refuses a row_to_json of the row
                        // in RETURNING): as an application deleting known rows.
                        var gone: [String] = []
                        for r in try conn.query(SQL(unsafeRaw: """
                            SELECT json_build_object('conversation_id', conversation_id, 'message_id', message_id, 'recipient_id', recipient_id, 'sent_at', sent_at)::text
                            FROM chat.receipts WHERE \(f) ORDER BY md5(message_id::text || recipient_id::text || '\(rng.next())') LIMIT 2
                            """)) {
                            let json = try r.decode(String.self, at: 0)
                            let o = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
                            try conn.execute(SQL(unsafeRaw: """
                                DELETE FROM chat.receipts WHERE conversation_id = \(o["conversation_id"]!) AND message_id = \(o["message_id"]!)
                                  AND recipient_id = \(o["recipient_id"]!) AND sent_at = '\(o["sent_at"]!)'
                                """))
                            gone.append(try RandomizedLifecycleTests.canonical(Array(json.utf8), receipt: true).key)
                        }
                        for k in gone { truthReceipts.removeValue(forKey: k) }
                        log.append("\(step): removed \(gone.count) receipts in \(p.name)")
                    }
                    try refresh(f)
                case 30..<45:
                    guard let p = pick(parts) else { continue }
                    log.append("\(step): archive export \(p.name)")
                    try run(["archive", "export", "--partition", p.name, "--archive-dir", dir], killable: true)
                case 45..<65:
                    let k = 1 + Int(rng.next() % UInt64(RandomizedLifecycleTests.days - 1))
                    let cutoff = start.addingTimeInterval(Double(k) * 86_400)
                    let hours = Int(Date().timeIntervalSince(cutoff) / 3600)
                    log.append("\(step): retire --older-than \(hours)h (ranges before day \(k))")
                    try run(["partitions", "retire", "--older-than", "\(hours)h", "--archive-dir", dir], killable: true)
                case 65..<82:
                    // Ranges that are not live, each with its current archive (the last verified).
                    let gone = try conn.query("""
                        SELECT DISTINCT ON (partition_name) partition_name, path FROM chat.archives
                        WHERE verified_at IS NOT NULL ORDER BY partition_name, archive_id DESC
                        """).map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1)) }
                        .filter { g in !parts.contains { $0.name == g.0 } }
                    guard let (name, path) = pick(gone) else { continue }
                    log.append("\(step): archive restore \(name) from \(path)")
                    try run(["archive", "restore", path], killable: true)
                case 82..<88:
                    let k = 1 + Int(rng.next() % UInt64(RandomizedLifecycleTests.days))
                    let cutoff = start.addingTimeInterval(Double(k) * 86_400)
                    let hours = Int(Date().timeIntervalSince(cutoff) / 3600)
                    try conn.execute("UPDATE chat.partition_config SET retention = make_interval(hours => \(hours)::int) WHERE parent_table = 'messages'")
                    log.append("\(step): nightly with a retention of \(hours)h")
                    try run(["nightly", "--quiet", "--archive-dir", dir], killable: false, accept: [0, 2])
                    try conn.execute("UPDATE chat.partition_config SET retention = NULL WHERE parent_table = 'messages'")
                case 88..<93:
                    let g = pick(["day", "week", "day"])!
                    log.append("\(step): every table partitioned by \(g) from now on")
                    for t in ["messages", "receipts", "presence_events"] {
                        try run(["partitions", "configure", "--table", t, "--granularity", g], killable: false)
                    }
                    try run(["partitions", "ensure"], killable: false)
                default:
                    let user = Int64(1 + rng.next() % 40)
                    let out = dir + "/export-\(step).ndjson.zst"
                    log.append("\(step): compliance export of user \(user)")
                    try run(["export", "--user", String(user), "--out", out], killable: false)
                    var text: [UInt8] = []
                    try ZstdDecompressor.decompressFile(path: out) { text.append(contentsOf: $0) }
                    var gotM: [String: String] = [:], gotR: [String: String] = [:], twice = 0
                    for line in text.split(separator: 10) {
                        let o = try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
                        switch o["record"] as? String {
                        case "message":
                            let c = try RandomizedLifecycleTests.canonical(line, receipt: false)
                            if gotM.updateValue(c.row, forKey: c.key) != nil { twice += 1 }
                        case "receipt":
                            let c = try RandomizedLifecycleTests.canonical(line, receipt: true)
                            if gotR.updateValue(c.row, forKey: c.key) != nil { twice += 1 }
                        default: break
                        }
                    }
                    // Recomputed over the union: messages the user sent or could read as a member;
                    // the user's own receipts and the receipts of what the user sent.
                    let members = try conn.query("SELECT conversation_id, joined_at, left_at FROM chat.members WHERE user_id = \(user)").map {
                        (try $0.decode(Int64.self, at: 0), try $0.decode(Date.self, at: 1), try $0.decode(Date?.self, at: 2))
                    }
                    let u = try RandomizedLifecycleTests.union(conn)
                    // (README: messages sent, or sent while a member; of those, the user's own
                    // receipts and every receipt of what the user sent, matched by message key.)
                    var wantM: [String: String] = [:], visible: [String: Int64] = [:]
                    for (k, v) in u.messages {
                        let o = try JSONSerialization.jsonObject(with: Data(v.utf8)) as! [String: Any]
                        let cv = (o["conversation_id"] as! NSNumber).int64Value, sender = (o["sender_id"] as! NSNumber).int64Value
                        let at = PostgresTimestamp.parse(o["sent_at"] as! String)!
                        let member = members.contains { $0.0 == cv && $0.1 <= at && ($0.2.map { at < $0 } ?? true) }
                        if sender == user || member { wantM[k] = v; visible["\(cv):\(o["message_id"]!)"] = sender }
                    }
                    var wantR: [String: String] = [:]
                    for (k, v) in u.receipts {
                        let o = try JSONSerialization.jsonObject(with: Data(v.utf8)) as! [String: Any]
                        guard let sender = visible["\(o["conversation_id"]!):\(o["message_id"]!)"] else { continue }
                        if (o["recipient_id"] as! NSNumber).int64Value == user || sender == user { wantR[k] = v }
                    }
                    #expect(twice == 0, "seed \(seed): \(twice) records exported twice\n\(log.joined(separator: "\n"))")
                    let diffM = Set(gotM.keys).symmetricDifference(wantM.keys).sorted().prefix(3)
                    #expect(gotM == wantM, "differ: \(diffM); seed \(seed): export of user \(user): \(gotM.count) messages, recomputed \(wantM.count)\n\(log.joined(separator: "\n"))")
                    let diffR = Set(gotR.keys).symmetricDifference(wantR.keys).sorted().prefix(3).map { ($0, gotR[$0] ?? wantR[$0] ?? "") }
                    #expect(gotR == wantR, "seed \(seed): export of user \(user): \(gotR.count) receipts, recomputed \(wantR.count); differ: \(diffR)\n\(log.joined(separator: "\n"))")
                }
                try check("step \(step)")
            }
        }
    }
}
