import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import ChatStoreZstd
import Foundation
import Testing

let goodEvents = """
{"type":"user","user_id":1,"handle":"ann","display_name":"Ann"}
{"type":"user","user_id":2,"handle":"bob"}
{"type":"user","user_id":3,"handle":"cy"}
{"type":"conversation","conversation_id":10,"kind":"group","title":"Trip","created_by":1}
{"type":"join","conversation_id":10,"user_id":1,"at":"TODAYT08:00:00Z","role":"owner"}
{"type":"join","conversation_id":10,"user_id":2,"at":"TODAYT08:00:00Z"}
{"type":"join","conversation_id":10,"user_id":3,"at":"TODAYT08:00:00Z"}
{"type":"media","conversation_id":10,"sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","size_bytes":5,"mime_type":"text/plain","file_name":"hello.txt","data_base64":"aGVsbG8="}
{"type":"message","conversation_id":10,"message_id":1,"sender_id":1,"sent_at":"TODAYT09:00:00Z","body":"hi \\u00e9 \\ud83d\\ude00 tab\\there","client_message_id":"c1"}
{"type":"message","conversation_id":10,"message_id":2,"sender_id":2,"sent_at":"TODAYT09:01:00Z","kind":"media","media_sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","reply_to_id":1}
{"type":"message","conversation_id":10,"message_id":3,"sender_id":1,"sent_at":"TODAYT09:00:05Z","body":"retry of c1","client_message_id":"c1"}
{"type":"delivered","conversation_id":10,"message_id":1,"recipient_id":2,"at":"TODAYT09:00:01Z"}
{"type":"read","conversation_id":10,"message_id":1,"recipient_id":2,"at":"TODAYT09:02:00Z"}
{"type":"delivered","conversation_id":10,"message_id":1,"recipient_id":2,"at":"TODAYT09:00:03Z"}
{"type":"delivered","conversation_id":10,"message_id":1,"recipient_id":3,"at":"TODAYT09:00:02Z"}
{"type":"leave","conversation_id":10,"user_id":3,"at":"TODAYT10:00:00Z"}
{"type":"presence","user_id":2,"at":"TODAYT09:00:00Z","state":"online","device_id":"phone"}
{"type":"presence","user_id":2,"at":"TODAYT09:10:00Z","state":"offline","device_id":"phone"}
"""

let badEvents: [(String, String)] = [
    ("{\"type\":\"message\", \"conversation_id\":10", "malformed JSON"),
    ("not json at all", "malformed JSON"),
    ("{\"type\":\"message\",\"conversation_id\":10,\"message_id\":9,\"sent_at\":\"TODAYT09:00:00Z\"}", "missing field \"sender_id\""),
    ("{\"type\":\"message\",\"conversation_id\":10,\"message_id\":9,\"sender_id\":\"x\",\"sent_at\":\"TODAYT09:00:00Z\"}", "field \"sender_id\" must be an integer"),
    ("{\"type\":\"message\",\"conversation_id\":77,\"message_id\":9,\"sender_id\":1,\"sent_at\":\"TODAYT09:00:00Z\"}", "unknown conversation 77"),
    ("{\"type\":\"read\",\"conversation_id\":10,\"message_id\":404,\"recipient_id\":2,\"at\":\"TODAYT09:00:00Z\"}", "receipt for unknown message 10:404"),
    ("{\"type\":\"message\",\"conversation_id\":10,\"message_id\":9,\"sender_id\":1,\"sent_at\":\"1990-01-01T00:00:00Z\"}", "outside every messages partition"),
    ("{\"type\":\"message\",\"conversation_id\":10,\"message_id\":9,\"sender_id\":1,\"sent_at\":\"TODAY 09:00:00\"}", "not an ISO 8601 timestamp"),
    ("{\"type\":\"teleport\",\"user_id\":1}", "unknown event type"),
    ("{\"type\":\"presence\",\"user_id\":1,\"at\":\"TODAYT09:00:00Z\",\"state\":\"away\"}", "field \"state\" must be one of"),
    ("{\"type\":\"message\",\"conversation_id\":10,\"message_id\":9,\"sender_id\":1,\"sent_at\":\"TODAYT09:00:00Z\",\"kind\":\"media\",\"media_sha256\":\"\(String(repeating: "ab", count: 32))\"}",
     "unknown media abab"),
    ("{\"type\":\"conversation\",\"conversation_id\":11,\"kind\":\"group\",\"created_by\":999}", "unknown user 999 (created_by)"),
]

@Suite struct IngestTests {
    var today: String { String(PostgresTimestamp.format(PartitionGranularity.day.floor(Date())).prefix(10)) }

    func write(_ text: String, _ path: String) throws {
        try text.replacingOccurrences(of: "TODAY", with: today).write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Ingests with tiny batches; with `settings`, through two parallel lanes (as the CLI does).
    func ingest(_ conn: PostgresConnection, _ paths: [String], strict: Bool = false, rejects: String? = nil,
                settings: ConnectionSettings? = nil) throws -> EventIngester.Report {
        var o = EventIngester.Options()
        o.strict = strict
        o.rejectPath = rejects
        o.batchSize = 4
        return try EventIngester(connection: conn, options: o, logger: TestDatabase.logger, settings: settings).ingest(paths: paths)
    }

    func snapshot(_ conn: PostgresConnection) throws -> [String] {
        try [("chat.users", "user_id"), ("chat.conversations", "conversation_id"), ("chat.members", "conversation_id, user_id, joined_at"),
             ("(SELECT conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at FROM chat.receipts)", "conversation_id, message_id, recipient_id"),
             ("chat.messages", "conversation_id, message_id"), ("chat.presence_events", "user_id, occurred_at"), ("chat.media", "conversation_id, sha256")]
            .map { try TestDatabase.checksum(conn, $0.0, orderBy: $0.1) }
    }

    @Test func ingestIsIdempotentAndAppliesEveryEventKind() throws {
        try TestDatabase.migrated { conn, settings in
            try PartitionManager(logger: TestDatabase.logger).ensure(conn)
            let dir = try TestPaths.temporaryDirectory()
            try write(goodEvents, dir + "/e.ndjson")
            let first = try ingest(conn, [dir + "/e.ndjson"], settings: settings)
            #expect(first.rejected == 0, "\(first.firstRejects)")
            #expect(first.accepted == 18)
            let snap = try snapshot(conn)
            let again = try ingest(conn, [dir + "/e.ndjson"], settings: settings)
            #expect(again.rejected == 0)
            #expect(try snapshot(conn) == snap)
            // Content: escapes decoded, the retried client id dropped, receipts forward-only with earliest times.
            #expect(try conn.scalar(String.self, "SELECT body FROM chat.messages WHERE message_id = 1") == "hi é 😀 tab\there")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE message_id = 3") == 0)
            let r = try #require(try conn.queryOne("SELECT status, delivered_at, read_at FROM chat.receipts WHERE message_id = 1 AND recipient_id = 2"))
            #expect(try r.decode(Int.self, "status") == 3)
            #expect(PostgresTimestamp.format(try r.decode(Date.self, "delivered_at")).hasSuffix("09:00:01.000000+00"))
            #expect(try conn.scalar(Bool.self, "SELECT left_at IS NOT NULL FROM chat.members WHERE user_id = 3"))
            #expect(try conn.scalar(Int.self, "SELECT size_bytes FROM chat.media") == 5)
            // A later "delivered" never moves a read receipt backwards.
            try write("{\"type\":\"delivered\",\"conversation_id\":10,\"message_id\":1,\"recipient_id\":2,\"at\":\"TODAYT09:00:00.5Z\"}\n", dir + "/late.ndjson")
            _ = try ingest(conn, [dir + "/late.ndjson"], settings: settings)
            #expect(try conn.scalar(Int.self, "SELECT status FROM chat.receipts WHERE message_id = 1 AND recipient_id = 2") == 3)
            // zstd input gives the same result.
            let z = try Zstd.compress(Array(try String(contentsOfFile: dir + "/e.ndjson", encoding: .utf8).utf8))
            try Data(z).write(to: URL(fileURLWithPath: dir + "/e.ndjson.zst"))
            let fromZst = try ingest(conn, [dir + "/e.ndjson.zst"], settings: settings)
            #expect(fromZst.rejected == 0 && fromZst.lines == 18)
        }
    }

    /// Rows another writer stored first make a step's plain COPY fail; that step is upserted
    /// instead, and nothing is lost or moved backwards. Held-back deliveries are written at the end.
    @Test func rowsStoredByAnotherWriterAreUpsertedInstead() throws {
        try TestDatabase.migrated { conn, settings in
            try PartitionManager(logger: TestDatabase.logger).ensure(conn)
            let dir = try TestPaths.temporaryDirectory()
            try write(goodEvents, dir + "/e.ndjson")
            _ = try ingest(conn, [dir + "/e.ndjson"], settings: settings)
            // Another writer stores a delivery for message 50 before the ingest has seen the message.
            _ = try conn.execute("""
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at)
                VALUES (10, 50, \(today + "T11:00:00Z")::timestamptz, 2, 2, \(today + "T11:00:01Z")::timestamptz)
                """)
            try write("""
                {"type":"message","conversation_id":10,"message_id":50,"sender_id":1,"sent_at":"TODAYT11:00:00Z","body":"late"}
                {"type":"read","conversation_id":10,"message_id":50,"recipient_id":2,"at":"TODAYT11:05:00Z"}
                {"type":"delivered","conversation_id":10,"message_id":50,"recipient_id":3,"at":"TODAYT11:00:02Z"}
                {"type":"presence","user_id":3,"at":"TODAYT11:00:00Z","state":"online"}
                {"type":"presence","user_id":3,"at":"TODAYT11:00:00Z","state":"online"}
                """, dir + "/more.ndjson")
            var o = EventIngester.Options()
            o.batchSize = 100
            o.workers = 1
            let r = try EventIngester(connection: conn, options: o, logger: TestDatabase.logger).ingest(paths: [dir + "/more.ndjson"])
            #expect(r.rejected == 0 && r.accepted == 5)
            #expect(r.stepsUpserted == 2, "the receipts step and the presence step (a duplicate event)")
            #expect(r.receiptsCopied == 0)
            let rows = try conn.query("""
                SELECT recipient_id, status, delivered_at IS NOT NULL AS d, read_at IS NOT NULL AS r
                FROM chat.receipts WHERE message_id = 50 ORDER BY recipient_id
                """).map { [try $0.decode(Int.self, at: 0), try $0.decode(Int.self, at: 1), try $0.decode(Bool.self, at: 2) ? 1 : 0, try $0.decode(Bool.self, at: 3) ? 1 : 0] }
            // Recipient 2: the other writer's delivery kept, the read added. Recipient 3: the
            // delivery held back for its read, written when the input ended.
            #expect(rows == [[2, 3, 1, 1], [3, 2, 1, 0]])
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.presence_events WHERE user_id = 3") == 1)
            // A fresh stream goes the fast way: a new message's receipts are copied in.
            try write("""
                {"type":"message","conversation_id":10,"message_id":60,"sender_id":1,"sent_at":"TODAYT12:00:00Z"}
                {"type":"delivered","conversation_id":10,"message_id":60,"recipient_id":2,"at":"TODAYT12:00:01Z"}
                {"type":"read","conversation_id":10,"message_id":60,"recipient_id":2,"at":"TODAYT12:00:02Z"}
                """, dir + "/fresh.ndjson")
            let f = try EventIngester(connection: conn, options: o, logger: TestDatabase.logger).ingest(paths: [dir + "/fresh.ndjson"])
            #expect(f.stepsUpserted == 0 && f.receiptsCopied == 1)
            #expect(try conn.scalar(Int.self, "SELECT status FROM chat.receipts WHERE message_id = 60") == 3)
        }
    }

    @Test func eachKindOfBadLineIsRejectedWithFileLineAndReason() throws {
        try TestDatabase.migrated { conn, settings in
            try PartitionManager(logger: TestDatabase.logger).ensure(conn)
            let dir = try TestPaths.temporaryDirectory()
            var text = goodEvents
            for (line, _) in badEvents { text += "\n" + line }
            text += "\n{\"type\":\"user\",\"user_id\":5,\"handle\":\"bad"
            var bytes = Array(text.replacingOccurrences(of: "TODAY", with: today).utf8)
            bytes += [0xff, 0xfe] + Array("\"}\n".utf8)
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/mixed.ndjson"))
            let r = try ingest(conn, [dir + "/mixed.ndjson"], rejects: dir + "/rejects.txt", settings: settings)
            #expect(r.accepted == 18)
            #expect(r.rejected == badEvents.count + 1)
            let rejects = try String(contentsOfFile: dir + "/rejects.txt", encoding: .utf8).split(separator: "\n")
            #expect(rejects.count == badEvents.count + 1)
            for (i, (_, reason)) in badEvents.enumerated() {
                let loc = "\(dir)/mixed.ndjson:\(18 + i + 1)\t"
                let line = rejects.first { $0.hasPrefix(loc) }
                #expect(line?.contains(reason) == true, "line \(18 + i + 1): expected \(reason), got \(line ?? "nothing")")
            }
            #expect(rejects.contains { $0.hasPrefix("\(dir)/mixed.ndjson:\(18 + badEvents.count + 1)\t") && $0.contains("invalid UTF-8") })
            // In file order, though lines are rejected by the reader and by two lanes.
            let numbers = rejects.compactMap { Int($0.split(separator: "\t")[0].split(separator: ":").last!) }
            #expect(numbers == numbers.sorted() && numbers.count == rejects.count)
        }
    }

    @Test func strictModeLeavesNothingBehind() throws {
        try TestDatabase.migrated { conn, settings in
            try PartitionManager(logger: TestDatabase.logger).ensure(conn)
            let dir = try TestPaths.temporaryDirectory()
            try write(goodEvents + "\n" + badEvents[4].0 + "\n" + goodEvents, dir + "/s.ndjson")
            do {
                _ = try ingest(conn, [dir + "/s.ndjson"], strict: true)
                Issue.record("expected a strict failure")
            } catch let e as EventIngester.StrictFailure {
                #expect(e.location == "\(dir)/s.ndjson:19")
                #expect(e.reason.contains("unknown conversation 77"))
            }
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.users") == 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages") == 0)
            // CLI exit codes: 1 in strict mode, 2 when lines were rejected, 0 when all loaded.
            let strict = try runCommand(TestPaths.binary, ["ingest", "--strict", dir + "/s.ndjson", "--database-url", settings.conninfo])
            #expect(strict.status == 1)
            #expect(strict.stderr.contains("s.ndjson:19"))
            let loose = try runCommand(TestPaths.binary, ["ingest", dir + "/s.ndjson", "--database-url", settings.conninfo])
            #expect(loose.status == 2)
            try write(goodEvents, dir + "/ok.ndjson")
            let ok = try runCommand(TestPaths.binary, ["ingest", dir + "/ok.ndjson", "--database-url", settings.conninfo])
            #expect(ok.status == 0, "\(ok.stderr)")
        }
    }

    /// What PostgreSQL would refuse, and what a lenient parser would silently turn into another
    /// value, is rejected line by line with its location, and the good lines around it are stored.
    @Test func hostileLinesAreRejectedOneByOneWithTheirLocation() throws {
        try TestDatabase.migrated { conn, settings in
            try PartitionManager(logger: TestDatabase.logger).ensure(conn)
            let dir = try TestPaths.temporaryDirectory()
            let msg = { (extra: String) in "{\"type\":\"message\",\"conversation_id\":10,\"message_id\":50,\"sender_id\":1,\(extra)}" }
            let at = { (t: String) in msg("\"sent_at\":\"\(t)\"") }
            let hostile: [(String, String)] = [
                (msg("\"sent_at\":\"TODAYT09:00:00Z\",\"body\":\"a\\u0000b\""), "NUL"),
                (at("0000-01-01T00:00:00Z"), "real date"),
                (at("0999-01-01T00:00:00Z"), "out of range"),
                (at("2026-11-31T00:00:00Z"), "real date"),
                (at("2026-02-30T00:00:00Z"), "real date"),
                (at("2026-11-30T33:99:99Z"), "real date"),
                (at("2026-11-30T10:00:00+99:99"), "real date"),
                (at("2026-11-30T10:00:00+05:60"), "real date"),
                ("{\"type\":\"media\",\"conversation_id\":10,\"sha256\":\"\(String(repeating: "cd", count: 32))\",\"size_bytes\":-5,\"mime_type\":\"x/y\"}", "must not be negative"),
                ("{\"type\":\"user\",\"user_id\":+5,\"handle\":\"p\"}", "malformed JSON"),
                ("{\"type\":\"user\",\"user_id\":007,\"handle\":\"p\"}", "leading zero"),
                ("{\"type\":\"user\",\"user_id\":1-2-3,\"handle\":\"p\"}", "bad number"),
                ("{\"type\":\"user\",\"user_id\":8,\"handle\":\"p\",\"extra\":[1,,2]}", "malformed JSON"),
                ("{\"type\":\"user\",\"user_id\":8,\"handle\":\"p\",\"extra\":[}}", "malformed JSON"),
                ("{\"type\":\"user\",\"user_id\":8,\"handle\":\"p\",\"extra\":{\"a\":\"x\ty\"}}", "control character"),
                ("{\"type\":\"user\",\"user_id\":8,\"handle\":\"p\",\"extra\":[\"\\u12G4\"]}", "escape"),
            ]
            // A byte order mark before the first line, the good events, the hostile lines.
            var text = goodEvents
            for (line, _) in hostile { text += "\n" + line }
            let bytes = [0xEF, 0xBB, 0xBF] + Array(text.replacingOccurrences(of: "TODAY", with: today).utf8) + [10]
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/hostile.ndjson"))
            for lanes in [nil, settings] {
                let r = try ingest(conn, [dir + "/hostile.ndjson"], rejects: dir + "/rejects.txt", settings: lanes)
                #expect(r.rejected == hostile.count, "\(r.firstRejects)")
                let rejects = try String(contentsOfFile: dir + "/rejects.txt", encoding: .utf8).split(separator: "\n")
                for (i, (_, reason)) in hostile.enumerated() {
                    let loc = "\(dir)/hostile.ndjson:\(18 + i + 1)\t"
                    let line = rejects.first { $0.hasPrefix(loc) }
                    #expect(line?.contains(reason) == true, "line \(18 + i + 1): expected \(reason), got \(line ?? "nothing")")
                }
            }
            // Line 1 (after the byte order mark) was stored, and every good line with it.
            #expect(try conn.scalar(String.self, "SELECT handle FROM chat.users WHERE user_id = 1") == "ann")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages") == 2)  // the retry of c1 is deduplicated
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.users") == 3)
        }
    }

    /// The reject file may not be an input, and is written for what was processed when a run
    /// stops on an error after committing batches.
    @Test func theRejectFileIsNeverAnInputAndIsWrittenWhenTheRunFails() throws {
        try TestDatabase.migrated { conn, settings in
            try PartitionManager(logger: TestDatabase.logger).ensure(conn)
            let dir = try TestPaths.temporaryDirectory()
            try write(goodEvents + "\n" + badEvents[1].0, dir + "/in.ndjson")
            let before = try String(contentsOfFile: dir + "/in.ndjson", encoding: .utf8)
            #expect(throws: EventError.self) { _ = try ingest(conn, [dir + "/in.ndjson"], rejects: dir + "/in.ndjson") }
            #expect(throws: EventError.self) { _ = try ingest(conn, [dir + "/in.ndjson"], rejects: dir + "/./in.ndjson") }
            #expect(try String(contentsOfFile: dir + "/in.ndjson", encoding: .utf8) == before)
            let cli = try runCommand(TestPaths.binary, ["ingest", dir + "/in.ndjson", "--reject-file", dir + "/in.ndjson", "--database-url", settings.conninfo])
            #expect(cli.status != 0 && cli.stderr.contains("one of the input files"), "\(cli.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.users") == 0)
            // A bad line early, then a zstd file that is damaged after its first batches.
            try write(badEvents[1].0 + "\n" + goodEvents, dir + "/a.ndjson")
            var junk = Array(repeating: UInt8(ascii: "x"), count: 64)
            junk[0] = 0x28; junk[1] = 0xB5; junk[2] = 0x2F; junk[3] = 0xFD
            try Data(junk).write(to: URL(fileURLWithPath: dir + "/b.ndjson.zst"))
            #expect(throws: (any Error).self) { _ = try ingest(conn, [dir + "/a.ndjson", dir + "/b.ndjson.zst"], rejects: dir + "/r.txt") }
            let r = try String(contentsOfFile: dir + "/r.txt", encoding: .utf8)
            #expect(r.hasPrefix("\(dir)/a.ndjson:1\t"), "\(r)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.users") == 3)
        }
    }

    /// A user whose handle is taken (by a stored user or one earlier in the file) is rejected by
    /// its line, whatever the batch size or the number of workers.
    @Test func aTakenHandleIsRejectedByItsLineWhateverTheBatching() throws {
        for (batch, lanes) in [(1, false), (4, false), (4, true), (10_000, true)] {
            try TestDatabase.migrated { conn, settings in
                let dir = try TestPaths.temporaryDirectory()
                try write("""
                    {"type":"user","user_id":1,"handle":"ann"}
                    {"type":"user","user_id":2,"handle":"bob"}
                    {"type":"user","user_id":3,"handle":"ann"}
                    {"type":"user","user_id":1,"handle":"ann"}
                    {"type":"user","user_id":4,"handle":"cy"}
                    """, dir + "/a.ndjson")
                try write("{\"type\":\"user\",\"user_id\":5,\"handle\":\"bob\"}", dir + "/b.ndjson")
                var o = EventIngester.Options()
                o.batchSize = batch
                o.rejectPath = dir + "/r.txt"
                let r = try EventIngester(connection: conn, options: o, logger: TestDatabase.logger, settings: lanes ? settings : nil)
                    .ingest(paths: [dir + "/a.ndjson", dir + "/b.ndjson"])
                #expect(r.rejected == 2, "batch \(batch), lanes \(lanes): \(r.firstRejects)")
                let rejects = try String(contentsOfFile: dir + "/r.txt", encoding: .utf8)
                #expect(rejects.contains("a.ndjson:3\thandle \"ann\" is already taken by user 1"), "\(rejects)")
                #expect(rejects.contains("b.ndjson:1\thandle \"bob\" is already taken by user 2"), "\(rejects)")
                #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.users") == 3)
            }
        }
    }

    /// Every column of every table ingest writes, except those the server fills at write time
    /// (`created_at`/`updated_at` defaults, `change_xid`), in key order: equal for equal contents.
    func stored(_ conn: PostgresConnection) throws -> [String: String] {
        var out: [String: String] = [:]
        for table in ["users", "conversations", "members", "media", "messages", "send_dedup", "receipts", "presence_events"] {
            let cols = try conn.query("""
                SELECT column_name FROM information_schema.columns WHERE table_schema = 'chat' AND table_name = \(table)
                  AND column_name NOT IN ('created_at', 'updated_at', 'change_xid') ORDER BY ordinal_position
                """).map { conn.quoteIdentifier(try $0.decode(String.self, "column_name")) }
            let list = cols.joined(separator: ", ")
            out[table] = try TestDatabase.checksum(conn, "(SELECT \(list) FROM chat.\(table))", orderBy: list)
                + ":" + String(try conn.scalar(Int.self, SQL(unsafeRaw: "SELECT count(*) FROM chat.\(table)")))
        }
        return out
    }

    /// What is stored does not depend on batching: the same adversarial files (a generated
    /// workload in time order, the good and bad events above, hostile lines, duplicates, a taken
    /// handle, deliveries before their messages) ingested with --batch-size 1, 7 and 10,000 and one
    /// or two workers leave the same rows in every table and the same reject file.
    /// A generated workload in time order with late and repeated events, and a file of good,
    /// bad and hostile events: (workload, extra) paths in `dir`.
    func adversarialFiles(in dir: String) throws -> (String, String) {
        let workload = dir + "/workload.ndjson", extra = dir + "/extra.ndjson"
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 30, days: 1, seed: 21)
            var lines = try TestDatabase.eventsInTimeOrder(conn)
            // Late and repeated events: the second half again, and every tenth line once more.
            lines += lines.suffix(lines.count / 2) + lines.enumerated().filter { $0.offset % 10 == 0 }.map(\.element)
            try (lines.joined(separator: "\n") + "\n").write(toFile: workload, atomically: true, encoding: .utf8)
        }
        let generatedIDs = 1_000_000   // the extra file's ids stay clear of the generated ones
        var text = goodEvents.replacingOccurrences(of: "\"user_id\":", with: "\"user_id\":\(generatedIDs)")
            .replacingOccurrences(of: "\"conversation_id\":10", with: "\"conversation_id\":\(generatedIDs)")
            .replacingOccurrences(of: "\"created_by\":1", with: "\"created_by\":\(generatedIDs)1")
            .replacingOccurrences(of: "\"sender_id\":", with: "\"sender_id\":\(generatedIDs)")
            .replacingOccurrences(of: "\"recipient_id\":", with: "\"recipient_id\":\(generatedIDs)")
        text += "\n" + badEvents.map(\.0).joined(separator: "\n")
        text += "\n{\"type\":\"user\",\"user_id\":\(generatedIDs)9,\"handle\":\"ann\"}"          // handle taken
        text += "\n{\"type\":\"user\",\"user_id\":\(generatedIDs)8,\"handle\":\"nul\\u0000\"}"     // NUL
        text += "\n{\"type\":\"user\",\"user_id\":1e3,\"handle\":\"num\"}"                         // not an integer
        // Membership in file order: a rejoin after the leave above, leave and join again (all
        // for one user, so one batch holds several of them), a leave before its join, a leave
        // of someone who never joined.
        let c = "\"conversation_id\":\(generatedIDs)"
        for (kind, user, time) in [("join", 3, "11"), ("leave", 3, "12"), ("join", 3, "13"), ("leave", 2, "07"), ("leave", 9, "09"), ("leave", 1, "14"), ("join", 1, "15")] {
            text += "\n{\"type\":\"\(kind)\",\(c),\"user_id\":\(generatedIDs)\(user),\"at\":\"TODAYT\(time):00:00Z\"}"
        }
        try write(text + "\n", extra)
        return (workload, extra)
    }

    @Test func whatIsStoredDoesNotDependOnBatchSizeOrWorkers() throws {
        let dir = try TestPaths.temporaryDirectory()
        let (workload, extra) = try adversarialFiles(in: dir)
        var reference: ([String: String], String)?
        for (batch, workers) in [(10_000, 2), (10_000, 1), (7, 2), (7, 1), (1, 2), (1, 1)] {
            try TestDatabase.migrated { conn, settings in
                _ = try PartitionManager(logger: TestDatabase.logger).ensureRange(
                    conn, from: TestDatabase.generatorStart.addingTimeInterval(-86_400), until: Date().addingTimeInterval(2 * 86_400))
                var o = EventIngester.Options()
                o.batchSize = batch
                o.workers = workers
                o.rejectPath = dir + "/rejects-\(batch)-\(workers).txt"
                let r = try EventIngester(connection: conn, options: o, logger: TestDatabase.logger, settings: settings).ingest(paths: [workload, extra])
                #expect(r.accepted > 1000 && r.rejected >= badEvents.count + 3, "batch \(batch), workers \(workers): \(r.accepted) accepted, \(r.rejected) rejected")
                let got = (try stored(conn), try String(contentsOfFile: o.rejectPath!, encoding: .utf8))
                #expect(got.1.components(separatedBy: "\tno membership of user").count - 1 == 2, "batch \(batch), workers \(workers): \(got.1)")
                let intervals = try conn.query("SELECT user_id, to_char(joined_at, 'HH24') AS j, coalesce(to_char(left_at, 'HH24'), '-') AS l FROM chat.members WHERE conversation_id = 1000000 ORDER BY 1, 2")
                    .map { "\(try $0.decode(Int64.self, "user_id") - 10_000_000):\(try $0.decode(String.self, "j"))-\(try $0.decode(String.self, "l"))" }
                #expect(intervals == ["1:08-14", "1:15--", "2:08--", "3:08-10", "3:11-12", "3:13--"], "batch \(batch), workers \(workers): \(intervals)")
                if let reference {
                    for (table, sum) in reference.0 { #expect(got.0[table] == sum, "batch \(batch), workers \(workers): \(table) differs") }
                    #expect(got.1 == reference.1, "batch \(batch), workers \(workers): the reject files differ")
                } else {
                    reference = got
                }
            }
        }
    }

    /// Two ingests of the same overlapping files at the same time, as two producers replaying
    /// one stream would: both finish (a deadlock between them is retried), and the tables end as
    /// one ingest leaves them.
    @Test func concurrentIngestsOfOverlappingFilesEndWithTheSameTables() throws {
        let dir = try TestPaths.temporaryDirectory()
        let (workload, extra) = try adversarialFiles(in: dir)
        func prepare(_ conn: PostgresConnection) throws {
            _ = try PartitionManager(logger: TestDatabase.logger).ensureRange(
                conn, from: TestDatabase.generatorStart.addingTimeInterval(-86_400), until: Date().addingTimeInterval(2 * 86_400))
        }
        let reference = try TestDatabase.migrated { conn, settings -> [String: String] in
            try prepare(conn)
            let r = try runCommand(TestPaths.binary, ["ingest", "--quiet", "--batch-size", "50", workload, extra, "--database-url", settings.conninfo])
            #expect(r.status == 2, "\(r.stderr)")
            return try stored(conn)
        }
        try TestDatabase.migrated { conn, settings in
            try prepare(conn)
            let results = Locked<[CommandResult]>([])
            let threads = (0..<2).map { k in
                Thread {
                    // Opposite orders of the same files, so the two runs meet the same rows.
                    let files = k == 0 ? [workload, extra] : [extra, workload]
                    if let r = try? runCommand(TestPaths.binary, ["ingest", "--quiet", "--batch-size", "50"] + files + ["--database-url", settings.conninfo]) {
                        results.withValue { $0.append(r) }
                    }
                }
            }
            threads.forEach { $0.start() }
            while results.get.count < 2 { Thread.sleep(forTimeInterval: 0.05) }
            for r in results.get { #expect(r.status == 2, "\(r.stderr)") }
            let got = try stored(conn)
            for (table, sum) in reference { #expect(got[table] == sum, "\(table) differs after two concurrent ingests") }
        }
    }

    /// A line longer than the limit (16 MiB) is rejected by itself, without being held in
    /// memory, and the lines around it load, whether it ends in a newline or the file ends.
    @Test func anOverlongLineIsRejectedByItselfAndTheRestLoads() throws {
        try TestDatabase.migrated { conn, _ in
            let dir = try TestPaths.temporaryDirectory()
            let huge = "{\"type\":\"user\",\"user_id\":7,\"handle\":\"" + String(repeating: "x", count: EventIngester.maximumLineBytes + 10) + "\"}"
            try write("{\"type\":\"user\",\"user_id\":1,\"handle\":\"a\"}\n" + huge + "\n{\"type\":\"user\",\"user_id\":2,\"handle\":\"b\"}\n" + huge, dir + "/big.ndjson")
            var o = EventIngester.Options()
            o.rejectPath = dir + "/r.txt"
            let r = try EventIngester(connection: conn, options: o, logger: TestDatabase.logger).ingest(paths: [dir + "/big.ndjson"])
            #expect(r.accepted == 2 && r.rejected == 2, "\(r.firstRejects)")
            let rejects = try String(contentsOfFile: dir + "/r.txt", encoding: .utf8)
            #expect(rejects.contains("big.ndjson:2\tline longer than 16 MiB"), "\(rejects.prefix(300))")
            #expect(rejects.contains("big.ndjson:4\tline longer than 16 MiB"), "\(rejects.prefix(300))")
            #expect(rejects.utf8.count < 4096, "the reject file holds a marker, not the 16 MiB line")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.users") == 2)
        }
    }
}
