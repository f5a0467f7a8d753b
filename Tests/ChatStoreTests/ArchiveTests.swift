import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import ChatStoreZstd
import Foundation
import Testing

@Suite struct ArchiveTests {
    let logger = TestDatabase.logger

    func firstPartition(_ conn: PostgresConnection) throws -> PartitionManager.Partition {
        try PartitionManager(logger: logger).partitions(conn, parent: "messages").first { p in
            (try? conn.scalar(Int.self, SQL(unsafeRaw: "SELECT count(*) FROM chat.\(p.name)"))) ?? 0 > 0
        }!
    }

    func rangeChecksums(_ conn: PostgresConnection, _ p: PartitionManager.Partition) throws -> [String] {
        let lo = PostgresTimestamp.format(p.from), hi = PostgresTimestamp.format(p.to)
        return [
            try TestDatabase.checksum(conn, "(SELECT * FROM chat.messages WHERE sent_at >= '\(lo)' AND sent_at < '\(hi)')", orderBy: "conversation_id, message_id"),
            try TestDatabase.checksum(conn, "(SELECT * FROM chat.receipts WHERE sent_at >= '\(lo)' AND sent_at < '\(hi)')", orderBy: "conversation_id, message_id, recipient_id, sent_at"),
            try TestDatabase.checksum(conn, """
                (SELECT conversation_id, sha256, size_bytes, mime_type, file_name, encoding, bytes FROM chat.media md
                 WHERE (conversation_id, sha256) IN (SELECT conversation_id, media_sha256 FROM chat.messages WHERE sent_at >= '\(lo)' AND sent_at < '\(hi)'))
                """, orderBy: "conversation_id, sha256"),
        ]
    }

    /// A restore that fails leaves the database as it was, partitions included (one
    /// transaction); an archive whose manifest is not the one the ledger recorded for its range
    /// is refused even when it verifies.
    @Test func aFailedRestoreLeavesNothingAndTheLedgerVouchesForTheManifest() throws {
        let dir = try TestPaths.temporaryDirectory()
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 60, days: 2, anomalyRate: 0)
            let p = try firstPartition(conn)
            let (_, path, _) = try Retirement(logger: logger).archive(conn, partition: p.name, directory: dir)
            // Into a database without the conversations: the messages' foreign key fails the
            // restore after its partitions were created; none of them stays.
            try TestDatabase.migrated { empty, _ in
                let before = try empty.scalar(Int.self, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'chat.messages'::regclass")
                #expect(throws: (any Error).self) { try ArchiveRestorer(logger: logger).restore(path: path, into: empty) }
                #expect(try empty.scalar(Int.self, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'chat.messages'::regclass") == before)
                #expect(try empty.scalar(Bool.self, "SELECT to_regclass(\("chat." + p.name)) IS NULL"))
                #expect(try empty.scalar(Int.self, "SELECT count(*) FROM chat.media") == 0)
            }
            // A manifest edit that verify cannot see (the tool version) is caught by the ledger.
            let manifestPath = path + "/manifest.json"
            let text = try String(contentsOfFile: manifestPath, encoding: .utf8)
            try text.replacingOccurrences(of: "\"tool_version\"", with: "\"tool_version\" ").write(toFile: manifestPath, atomically: true, encoding: .utf8)
            #expect(try ArchiveVerifier().verify(path: path, connection: nil).ok)
            let r = try runCommand(TestPaths.binary, ["archive", "restore", path, "--database-url", settings.conninfo])
            #expect(r.status == 1 && r.stderr.contains("is not the manifest the ledger recorded"), "\(r.stderr)")
            try text.write(toFile: manifestPath, atomically: true, encoding: .utf8)
            let ok = try runCommand(TestPaths.binary, ["archive", "restore", path, "--database-url", settings.conninfo])
            #expect(ok.status == 0, "\(ok.stderr)")
        }
    }

    @Test func exportThenRestoreIntoAnEmptyDatabaseGivesIdenticalTables() throws {
        let dir = try TestPaths.temporaryDirectory()
        var path = ""
        var expected: [String] = []
        var p: PartitionManager.Partition!
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 150, days: 3, anomalyRate: 0.01)
            p = try firstPartition(conn)
            expected = try rangeChecksums(conn, p)
            (_, path) = try ArchiveExporter(logger: logger).export(conn, partition: p.name, into: dir)
            let v = try ArchiveVerifier().verify(path: path, connection: conn)
            #expect(v.ok, "\(v.problems)")
            #expect(v.checkedAgainstDatabase)
            // Readable without chatstore.
            for f in ["messages.ndjson.zst", "receipts.ndjson.zst", "media.pack.zst", "media.index.ndjson.zst"] {
                #expect(try runCommand("/usr/bin/zstd", ["-tq", path + "/" + f]).status == 0, "\(f)")
            }
            let jq = try runCommand("/bin/sh", ["-c", "zstd -dc '\(path)/messages.ndjson.zst' | jq -c 'select(.kind == \"text\") | .body' | head -1"])
            #expect(jq.status == 0 && !jq.stdout.isEmpty)
            // Users, conversations and members come along to the empty database (they are never archived).
            try TestDatabase.migrated { empty, _ in
                for t in ["users", "conversations", "members"] {
                    var rows: [UInt8] = []
                    try conn.copyOut(SQL(unsafeRaw: "COPY chat.\(t) TO STDOUT")) { rows.append(contentsOf: $0) }
                    try empty.copyIn(SQL(unsafeRaw: "COPY chat.\(t) FROM STDIN")) { w in try rows.withUnsafeBytes { try w.writeRaw($0) } }
                }
                let r = try ArchiveRestorer(logger: logger).restore(path: path, into: empty)
                #expect(r.messagesAdded == r.messages && r.messages > 0)
                #expect(try rangeChecksums(empty, p) == expected)
                // Idempotent.
                let again = try ArchiveRestorer(logger: logger).restore(path: path, into: empty)
                #expect(again.messagesAdded == 0 && again.receiptsAdded == 0 && again.mediaAdded == 0)
                #expect(try rangeChecksums(empty, p) == expected)
            }
        }
    }

    @Test func verifyCatchesTruncatedFlippedMissingAndExtraFiles() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 120, days: 2)
            let p = try firstPartition(conn)
            let base = try TestPaths.temporaryDirectory()
            let (_, good) = try ArchiveExporter(logger: logger).export(conn, partition: p.name, into: base)
            func damaged(_ name: String, _ damage: (String) throws -> Void) throws -> ArchiveVerifier.Report {
                let copy = base + "/" + name
                _ = try runCommand("/bin/cp", ["-r", good, copy])
                try damage(copy)
                return try ArchiveVerifier().verify(path: copy, connection: nil)
            }
            let truncated = try damaged("truncated") { d in
                let f = d + "/receipts.ndjson.zst"
                let data = try Data(contentsOf: URL(fileURLWithPath: f))
                try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: f))
            }
            #expect(!truncated.ok)
            #expect(truncated.problems.contains { $0.contains("receipts.ndjson.zst") && $0.contains("truncated") })
            let flipped = try damaged("flipped") { d in
                let f = d + "/messages.ndjson.zst"
                var data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: f)))
                data[data.count / 2] ^= 0x04
                try Data(data).write(to: URL(fileURLWithPath: f))
            }
            #expect(!flipped.ok)
            #expect(flipped.problems.contains { $0.contains("messages.ndjson.zst") && $0.contains("sha256") })
            #expect(flipped.problems.contains { $0.contains("messages.ndjson.zst") && $0.contains("at byte") })
            let missing = try damaged("missing") { d in try FileManager.default.removeItem(atPath: d + "/media.pack.zst") }
            #expect(missing.problems.contains { $0.hasSuffix("media.pack.zst: missing") })
            let extra = try damaged("extra") { d in try "x".write(toFile: d + "/notes.txt", atomically: true, encoding: .utf8) }
            #expect(extra.problems.contains { $0.contains("notes.txt: not listed in the manifest") })
            // A media index whose offset is negative (the manifest updated to match) is a problem
            // named by file and line, not a trap.
            let negative = try damaged("negative-offset") { d in
                var index: [UInt8] = []
                try ZstdDecompressor.decompressFile(path: d + "/media.index.ndjson.zst") { index.append(contentsOf: $0) }
                var lines = String(decoding: index, as: UTF8.self).split(separator: "\n").map(String.init)
                #expect(!lines.isEmpty)
                if !lines.isEmpty, let r = lines[0].range(of: #""offset":[0-9]+"#, options: .regularExpression) {
                    lines[0].replaceSubrange(r, with: #""offset":-5"#)
                }
                let text = Array((lines.joined(separator: "\n") + "\n").utf8)
                let compressed = try Zstd.compress(text)
                try Data(compressed).write(to: URL(fileURLWithPath: d + "/media.index.ndjson.zst"))
                var manifest = try JSONDecoder().decode(ArchiveManifest.self, from: Data(contentsOf: URL(fileURLWithPath: d + "/manifest.json")))
                for i in manifest.files.indices where manifest.files[i].name == "media.index.ndjson.zst" {
                    manifest.files[i].sha256 = SHA256.hash(compressed).hex
                    manifest.files[i].bytes = Int64(compressed.count)
                    manifest.files[i].uncompressedBytes = Int64(text.count)
                }
                try JSONEncoder().encode(manifest).write(to: URL(fileURLWithPath: d + "/manifest.json"))
            }
            #expect(negative.problems.contains { $0.contains("media.index.ndjson.zst: line 1: offset -5") }, "\(negative.problems)")
            // The CLI exits 1 and restore refuses a damaged archive.
            let cli = try runCommand(TestPaths.binary, ["archive", "verify", base + "/flipped", "--offline"])
            #expect(cli.status == 1)
            #expect(throws: ArchiveError.self) { try ArchiveRestorer(logger: logger).restore(path: base + "/flipped", into: conn) }
            // And a database with a row changed after export no longer matches.
            let lo = PostgresTimestamp.format(p.from)
            try conn.execute(SQL(unsafeRaw: "DELETE FROM chat.receipts WHERE (conversation_id, message_id, recipient_id, sent_at) IN (SELECT conversation_id, message_id, recipient_id, sent_at FROM chat.receipts WHERE sent_at >= '\(lo)' ORDER BY 1, 2, 3, 4 LIMIT 1)"))
            let db = try ArchiveVerifier().verify(path: good, connection: conn)
            #expect(db.problems.contains { $0.contains("receipts archived, the database holds") })
        }
    }

    /// Messages by day and receipts by week: retire cannot take a day of messages without its
    /// receipts, so it is refused up front, naming the partitions, the granularities and what to
    /// run; nothing is detached or recorded, and nightly with a retention says the same.
    @Test func retireOfMixedGranularitiesIsRefusedUpFrontAndChangesNothing() throws {
        try TestDatabase.migrated { conn, settings in
            let configure = try runCommand(TestPaths.binary, ["partitions", "configure", "--table", "receipts", "--granularity", "week", "--database-url", settings.conninfo])
            #expect(configure.status == 0, "\(configure.stderr)")
            try TestDatabase.generate(settings, users: 80, days: 3)
            func layout() throws -> String {
                try conn.scalar(String.self, """
                    SELECT string_agg(c.relname || ':' || coalesce(i.inhparent::regclass::text, '-'), ',' ORDER BY c.relname)
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
                    WHERE n.nspname = 'chat' AND c.relkind = 'r' AND (c.relname LIKE 'messages_p%' OR c.relname LIKE 'receipts_p%')
                    """)
            }
            let before = try layout()
            let dir = try TestPaths.temporaryDirectory()
            let r = try runCommand(TestPaths.binary, ["partitions", "retire", "--older-than", "2d", "--archive-dir", dir, "--database-url", settings.conninfo])
            #expect(r.status == 1)
            #expect(r.stderr.contains("cannot retire messages_p") && r.stderr.contains("messages by day, receipts by week")
                    && r.stderr.contains("Nothing was changed") && r.stderr.contains("partitions configure --table receipts --granularity day"), "\(r.stderr)")
            #expect(try layout() == before)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.archives") == 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
            let dry = try runCommand(TestPaths.binary, ["partitions", "retire", "--older-than", "2d", "--dry-run", "--archive-dir", dir, "--database-url", settings.conninfo])
            #expect(dry.status == 1 && dry.stderr.contains("cannot retire messages_p"), "\(dry.stderr)")
            try conn.execute("UPDATE chat.partition_config SET retention = interval '2 days' WHERE parent_table = 'messages'")
            let nightly = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--archive-dir", dir, "--database-url", settings.conninfo])
            #expect(nightly.status == 1 && nightly.stderr.contains("cannot retire messages_p"), "\(nightly.stderr)")
            // Upkeep made partitions ahead; none was detached.
            let after = try layout()
            #expect(!after.contains(":-"), "\(after)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.archives") == 0)
        }
    }

    /// Retirement takes the retired range's messages out of the unread state in the detach's
    /// transaction: afterwards the counts, the unread rows and each pair's last message time are
    /// those of a full recompute over what is still live (pairs whose last message was in the
    /// range included), and the next incremental run still agrees.
    @Test func retireLeavesTheUnreadStateOfAFullRecompute() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 120, days: 3)
            let runner = JobRunner(logger: logger)
            _ = try UnreadJob().run(conn, runner: runner)
            let cutoff = TestDatabase.generatorStart.addingTimeInterval(86_400)
            let lo = PostgresTimestamp.format(TestDatabase.generatorStart), hi = PostgresTimestamp.format(cutoff)
            let inRange = try conn.scalar(Int.self, "SELECT count(*) FROM chat.unread_messages WHERE sent_at < \(hi)::timestamptz")
            let lastInRange = try conn.scalar(Int.self, "SELECT count(*) FROM chat.unread_counts WHERE last_message_at >= \(lo)::timestamptz AND last_message_at < \(hi)::timestamptz")
            #expect(inRange > 0 && lastInRange > 0, "the retired day holds unread rows (\(inRange)) and pairs' last messages (\(lastInRange))")
            _ = try Retirement(logger: logger).retire(conn, olderThan: cutoff, directory: try TestPaths.temporaryDirectory(), keepTables: false)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.unread_messages WHERE sent_at < \(hi)::timestamptz") == 0)
            let verify = try UnreadJob(mode: .verify).run(conn, runner: runner)
            #expect(verify.driftCount == 0, "\(verify.drift.prefix(5))")
            _ = try UnreadJob().run(conn, runner: runner)
            #expect(try UnreadJob(mode: .verify).run(conn, runner: runner).driftCount == 0)
        }
    }

    @Test func retireKilledBetweenEachStepAndRerunLosesNothing() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 120, days: 3)
            let pm = PartitionManager(logger: logger)
            let cutoff = TestDatabase.generatorStart.addingTimeInterval(2 * 86_400)
            let old = try pm.partitions(conn, parent: "messages").filter { $0.to <= cutoff }
            #expect(old.count == 2)
            let sums = try old.map { try rangeChecksums(conn, $0) }
            let total = try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages")
            let dir = try TestPaths.temporaryDirectory()
            let retire = Retirement(logger: logger)
            for step in [Retirement.Step.export, .detach] {
                _ = try retire.retire(conn, olderThan: cutoff, directory: dir, keepTables: false, stopAfter: step)
            }
            // A real kill -9 in the middle of a run, too.
            let pid = try spawnCommand(TestPaths.binary, ["partitions", "retire", "--older-than", "\(Int(Date().timeIntervalSince(cutoff) / 3600))h", "--archive-dir", dir, "--database-url", settings.conninfo])
            Thread.sleep(forTimeInterval: 0.05)
            kill(pid, SIGKILL)
            _ = waitCommand(pid)
            Thread.sleep(forTimeInterval: 0.3)
            let done = try retire.retire(conn, olderThan: cutoff, directory: dir, keepTables: false)
            #expect(try pm.partitions(conn, parent: "messages").filter { $0.to <= cutoff }.isEmpty)
            for p in old {
                #expect(try conn.scalar(Bool.self, "SELECT to_regclass(\("chat." + p.name)) IS NULL"))
                #expect(try ArchiveVerifier().verify(path: dir + "/" + p.name, connection: nil).ok)
            }
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.archives WHERE dropped_at IS NOT NULL") >= 2)
            _ = done
            // Restoring both archives brings back exactly what was there.
            for p in old { _ = try ArchiveRestorer(logger: logger).restore(path: dir + "/" + p.name, into: conn) }
            #expect(try old.map { try rangeChecksums(conn, $0) } == sums)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages") == total)
        }
    }

    /// A write to a range after its archive was read (a late read, a deleted receipt, a change
    /// to rows a restore brought back) is never dropped with the partition: retire sees it after
    /// the detach and writes a new archive from the detached tables, beside the old one, which
    /// stays on disk; only the new one restores.
    @Test func aWriteAfterTheArchiveWasReadIsReArchivedNotDropped() throws {
        let dir = try TestPaths.temporaryDirectory()
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 60, days: 3, anomalyRate: 0)
            let p = try firstPartition(conn)
            let lo = PostgresTimestamp.format(p.from), hi = PostgresTimestamp.format(p.to)
            let retire = Retirement(logger: logger)
            let (_, first, _) = try retire.archive(conn, partition: p.name, directory: dir)
            // A cooperating writer (change_xid = DEFAULT, docs/jobs.md) marks a receipt read.
            let read = try conn.execute(SQL(unsafeRaw: """
                UPDATE chat.receipts SET status = 3, read_at = '\(hi)'::timestamptz + interval '1 hour', change_xid = DEFAULT
                WHERE (conversation_id, message_id, recipient_id) IN (
                    SELECT conversation_id, message_id, recipient_id FROM chat.receipts
                    WHERE sent_at >= '\(lo)' AND sent_at < '\(hi)' AND read_at IS NULL ORDER BY 1, 2, 3 LIMIT 1)
                  AND sent_at >= '\(lo)' AND sent_at < '\(hi)'
                """))
            #expect(read.affectedRows == 1)
            var sums = try rangeChecksums(conn, p)
            let r1 = try retire.retire(conn, olderThan: p.to, directory: dir, keepTables: false)
            #expect(r1.map(\.steps) == [["detach", "re-export", "verify", "drop"]], "\(r1)")
            let second = try #require(r1.first?.path)
            #expect(second != first && FileManager.default.fileExists(atPath: first + "/manifest.json"), "written beside the old one, which is kept")
            // The superseded archive is refused; the current one brings back the late read.
            #expect(throws: (any Error).self) { try ArchiveRestorer(logger: logger).restore(path: first, into: conn) }
            _ = try ArchiveRestorer(logger: logger).restore(path: second, into: conn)
            #expect(try rangeChecksums(conn, p) == sums)

            // Restored, then changed by the application (a receipt deleted), then retired again.
            try conn.execute(SQL(unsafeRaw: """
                DELETE FROM chat.receipts WHERE (conversation_id, message_id, recipient_id) IN (
                    SELECT conversation_id, message_id, recipient_id FROM chat.receipts
                    WHERE sent_at >= '\(lo)' AND sent_at < '\(hi)' ORDER BY 1, 2, 3 LIMIT 1) AND sent_at >= '\(lo)' AND sent_at < '\(hi)'
                """))
            sums = try rangeChecksums(conn, p)
            let r2 = try retire.retire(conn, olderThan: p.to, directory: dir, keepTables: false)
            // (Counted before the detach this time: a fresh export while attached.)
            #expect(r2.first.map { $0.steps.contains("export") || $0.steps.contains("re-export") } == true, "\(r2)")
            let third = try #require(r2.first?.path)
            #expect(Set([first, second, third]).count == 3)
            _ = try ArchiveRestorer(logger: logger).restore(path: third, into: conn)
            #expect(try rangeChecksums(conn, p) == sums)

            // Restored and left alone: retire again reuses nothing stale, and nothing is lost.
            let r3 = try retire.retire(conn, olderThan: p.to, directory: dir, keepTables: false)
            let fourth = try #require(r3.first?.path)
            _ = try ArchiveRestorer(logger: logger).restore(path: fourth, into: conn)
            #expect(try rangeChecksums(conn, p) == sums)
            // The ledger agrees with the catalog and the files: four archives, one current.
            let warnings = try PartitionManager(logger: logger).status(conn).warnings.filter { $0.contains("chat.archives") || $0.contains("detached") }
            #expect(warnings.isEmpty, "\(warnings)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.archives WHERE partition_name = \(p.name) AND verified_at IS NOT NULL") == 4)
        }
    }

    @Test func complianceExportHoldsExactlyTheUsersMessages() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 120, days: 3)
            let user = try conn.scalar(Int64.self, "SELECT sender_id FROM chat.messages GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
            let expected = try conn.query("""
                SELECT m.conversation_id, m.message_id FROM chat.messages m
                WHERE m.sender_id = \(user) OR EXISTS (SELECT 1 FROM chat.members mb WHERE mb.conversation_id = m.conversation_id AND mb.user_id = \(user)
                      AND mb.joined_at <= m.sent_at AND (mb.left_at IS NULL OR m.sent_at < mb.left_at))
                """).map { "\(try $0.decode(Int64.self, at: 0)):\(try $0.decode(Int64.self, at: 1))" }
            let expectedMedia = try conn.scalar(Int.self, SQL(unsafeRaw: "SELECT count(*) FROM (SELECT DISTINCT conversation_id, media_sha256 FROM (\(expectedMediaQuery(user))) x) y"))
            // Retire the oldest day first, so part of the history comes from an archive.
            let dir = try TestPaths.temporaryDirectory()
            _ = try Retirement(logger: logger).retire(conn, olderThan: TestDatabase.generatorStart.addingTimeInterval(86_400), directory: dir, keepTables: false)
            let out = dir + "/user.ndjson.zst"
            let r = try runCommand(TestPaths.binary, ["export", "--user", String(user), "--out", out, "--json", "--database-url", settings.conninfo])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("\"fromArchives\""))
            #expect(!r.stdout.contains("\"fromArchives\" : 0,"))
            #expect(try runCommand("/usr/bin/zstd", ["-tq", out]).status == 0)
            var text: [UInt8] = []
            try ZstdDecompressor.decompressFile(path: out) { text.append(contentsOf: $0) }
            var got: [String] = []
            var foreignReceipts = 0
            for line in text.split(separator: 10) {
                let o = try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
                if o["record"] as? String == "message" { got.append("\(o["conversation_id"]!):\(o["message_id"]!)") }
                if o["record"] as? String == "receipt", (o["recipient_id"] as! NSNumber).int64Value != user {
                    // Others' receipts only for messages the user sent.
                    foreignReceipts += 1
                }
            }
            #expect(got.sorted() == expected.sorted())
            let sentByUser = try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts r JOIN chat.messages m USING (conversation_id, message_id, sent_at) WHERE m.sender_id = \(user) AND r.recipient_id <> \(user)")
            #expect(foreignReceipts >= sentByUser)
            // Media of every visible message, archived days included, each once.
            func records(_ path: String) throws -> [String: [String]] {
                var text: [UInt8] = []
                try ZstdDecompressor.decompressFile(path: path) { text.append(contentsOf: $0) }
                var out: [String: [String]] = [:]
                for line in text.split(separator: 10) {
                    let o = try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
                    let kind = o["record"] as! String
                    let key = kind == "media" ? "\(o["conversation_id"]!):\(o["sha256"]!)"
                        : kind == "receipt" ? "\(o["conversation_id"]!):\(o["message_id"]!):\(o["recipient_id"]!)" : "\(o["conversation_id"] ?? ""):\(o["message_id"] ?? o["user_id"] ?? "")"
                    out[kind, default: []].append(key)
                }
                return out
            }
            let first = try records(out)
            #expect((first["media"] ?? []).count == expectedMedia, "media: \((first["media"] ?? []).count) of \(expectedMedia)")
            #expect(expectedMedia > 0)
            // Restore the retired day: the export then reads it from the database only, so every
            // message, receipt and media item is still there exactly once.
            let archived = try conn.scalar(String.self, "SELECT path FROM chat.archives WHERE dropped_at IS NOT NULL ORDER BY archive_id LIMIT 1")
            _ = try ArchiveRestorer(logger: logger).restore(path: archived, into: conn)
            let again = try runCommand(TestPaths.binary, ["export", "--user", String(user), "--out", dir + "/again.ndjson.zst", "--json", "--database-url", settings.conninfo])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("\"fromArchives\" : 0,"), "\(again.stdout)")
            let second = try records(dir + "/again.ndjson.zst")
            for kind in ["message", "receipt", "media"] {
                let keys = second[kind] ?? []
                #expect(keys.count == Set(keys).count, "\(kind) listed twice after a restore")
                #expect(keys.sorted() == (first[kind] ?? []).sorted(), "\(kind): the same records before and after the restore")
            }
        }
    }

    /// The messages with media a user could see (sent, or sent while a member).
    func expectedMediaQuery(_ user: Int64) -> String {
        """
        SELECT m.conversation_id, m.media_sha256 FROM chat.messages m
        WHERE m.media_sha256 IS NOT NULL AND (m.sender_id = \(user) OR EXISTS (SELECT 1 FROM chat.members mb WHERE mb.conversation_id = m.conversation_id
              AND mb.user_id = \(user) AND mb.joined_at <= m.sent_at AND (mb.left_at IS NULL OR m.sent_at < mb.left_at)))
        """
    }

    /// Manifests are checked, not trusted: each edit of a field is caught by verify (naming what
    /// is wrong, not DAMAGED data), and restore refuses the archive before creating anything.
    @Test func everyManifestEditIsCaughtAndRestoreRefusesIt() throws {
        let dir = try TestPaths.temporaryDirectory()
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 60, days: 2, anomalyRate: 0)
            let p = try firstPartition(conn)
            let (_, path) = try ArchiveExporter(logger: logger).export(conn, partition: p.name, into: dir)
            let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path + "/manifest.json"))) as! [String: Any]
            func shifted(_ key: String, days: Int) -> String {
                let d = PostgresTimestamp.parse(original[key] as! String)!.addingTimeInterval(Double(days) * 86_400)
                return PostgresTimestamp.format(d)
            }
            let files = original["files"] as! [[String: Any]]
            let edits: [(String, (inout [String: Any]) -> Void, String)] = [
                ("format_version", { $0["format_version"] = 2 }, "format_version 2"),
                ("schema_version", { $0["schema_version"] = 999 }, "schema_version 999"),
                ("table", { $0["table"] = "receipts" }, "table"),
                ("partition", { $0["partition"] = "messages_p20200101" }, "does not match the range"),
                ("range shifted a day", { $0["range_start"] = shifted("range_start", days: 1); $0["range_end"] = shifted("range_end", days: 1) }, "does not match the range"),
                ("range widened", { $0["range_start"] = "2020-01-01 00:00:00+00" }, "not one partition"),
                ("duplicated file", { $0["files"] = files + [files[0]] }, "listed twice"),
                ("media rows", { m in
                    m["files"] = files.map { f in var f = f; if f["content"] as? String == "media_pack" { f["rows"] = (f["rows"] as! Int) + 1 }; return f }
                }, "media pack"),
                ("unknown content", { m in
                    m["files"] = files.map { f in var f = f; if f["content"] as? String == "messages" { f["content"] = "bmessages" }; return f }
                }, "unknown content"),
            ]
            for (what, edit, expected) in edits {
                let work = dir + "/edit-" + what.replacingOccurrences(of: " ", with: "-")
                try FileManager.default.copyItem(atPath: path, toPath: work)
                var m = original
                edit(&m)
                try JSONSerialization.data(withJSONObject: m, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: work + "/manifest.json"))
                let v = try ArchiveVerifier().verify(path: work, connection: nil)
                #expect(!v.ok, "\(what) passed verify")
                #expect(v.problems.contains { $0.contains(expected) }, "\(what): \(v.problems)")
                // Into a fresh database: refused, and nothing was created.
                try TestDatabase.migrated { fresh, _ in
                    let before = try fresh.scalar(Int.self, "SELECT count(*) FROM pg_class WHERE relnamespace = 'chat'::regnamespace")
                    #expect(throws: (any Error).self, "\(what) restored") { _ = try ArchiveRestorer(logger: logger).restore(path: work, into: fresh) }
                    #expect(try fresh.scalar(Int.self, "SELECT count(*) FROM pg_class WHERE relnamespace = 'chat'::regnamespace") == before)
                }
            }
        }
    }

    /// The race that lost data: retire waits at its DETACH behind a reader while an export of the
    /// same partition starts. The export is refused (RangeBusy, naming retire's session) instead of
    /// writing over retire's archive; once the reader ends, retire finishes, and every message and
    /// receipt of the range is in its verified archive. An export never replaces an archive.
    @Test func exportOfARangeBeingRetiredIsRefusedAndNothingIsLost() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 80, days: 2)
            let p = try firstPartition(conn)
            let lo = PostgresTimestamp.format(p.from), hi = PostgresTimestamp.format(p.to)
            let messages = try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE sent_at >= \(lo)::timestamptz AND sent_at < \(hi)::timestamptz")
            let receipts = try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts WHERE sent_at >= \(lo)::timestamptz AND sent_at < \(hi)::timestamptz")
            let dir = try TestPaths.temporaryDirectory()
            // A reader holds the partition, so DETACH waits.
            let reader = try PostgresConnection(settings: settings, logger: logger)
            try reader.execute("BEGIN")
            _ = try reader.scalar(Int.self, SQL(unsafeRaw: "SELECT count(*) FROM chat.\(reader.quoteIdentifier(p.name))"))
            final class Box: @unchecked Sendable { var result: Result<[Retirement.PartitionResult], Error>? }
            let box = Box()
            let retiring = Thread {
                do {
                    let c = try PostgresConnection(settings: settings, logger: TestDatabase.logger)
                    try c.execute("SET application_name = 'test retire'")
                    var r = Retirement(logger: TestDatabase.logger)
                    r.lockTimeout = .seconds(20)
                    box.result = .success(try r.retire(c, olderThan: p.to, directory: dir, keepTables: false))
                } catch { box.result = .failure(error) }
            }
            retiring.start()
            // Wait until retire is queued behind the reader (its DETACH waits on the partition).
            var waiting = false
            for _ in 0..<400 where !waiting {
                Thread.sleep(forTimeInterval: 0.05)
                waiting = try conn.scalar(Bool.self, """
                    SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                                   WHERE NOT l.granted AND a.application_name = 'test retire')
                    """)
            }
            #expect(waiting)
            var exporter = ArchiveExporter(logger: logger)
            exporter.lockWait = .milliseconds(500)
            do {
                _ = try exporter.export(conn, partition: p.name, into: dir)
                Issue.record("the export ran while retire held the range")
            } catch let e as RangeBusy {
                #expect(e.description.contains("test retire"), "\(e.description)")
            }
            try reader.execute("ROLLBACK")
            while box.result == nil { Thread.sleep(forTimeInterval: 0.05) }
            let results = try box.result!.get()
            let mine = results.first { $0.partition == p.name }
            #expect(mine?.steps == ["export", "verify", "detach", "drop"])
            #expect(try conn.scalar(Bool.self, "SELECT to_regclass(\("chat." + p.name)) IS NULL"))
            let v = try ArchiveVerifier().verify(path: mine!.path, connection: nil)
            #expect(v.ok && v.rows["messages"] == messages && v.rows["receipts"] == receipts, "\(v)")
            // The only directory of the range is retire's archive.
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(p.name) } == [p.name])
        }
    }

    /// Exporting a range that already has an archive writes a new one beside it.
    @Test func anExportNeverReplacesAnArchive() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 40, days: 1)
            let p = try firstPartition(conn)
            let dir = try TestPaths.temporaryDirectory()
            let (_, first) = try ArchiveExporter(logger: logger).export(conn, partition: p.name, into: dir)
            let before = try Data(contentsOf: URL(fileURLWithPath: first + "/manifest.json"))
            // An interrupted export's leftovers (a process that is gone) are removed by the next.
            try FileManager.default.createDirectory(atPath: dir + "/.\(p.name).partial-999999", withIntermediateDirectories: true)
            let (_, second) = try ArchiveExporter(logger: logger).export(conn, partition: p.name, into: dir)
            #expect(second == dir + "/" + p.name + ".2")
            #expect(try Data(contentsOf: URL(fileURLWithPath: first + "/manifest.json")) == before)
            #expect(try ArchiveVerifier().verify(path: first, connection: conn).ok)
            #expect(try ArchiveVerifier().verify(path: second, connection: conn).ok)
            #expect(!FileManager.default.fileExists(atPath: dir + "/.\(p.name).partial-999999"))
        }
    }

    /// retire --dry-run changes nothing and says what would happen; verify takes a directory of
    /// archives or a manifest path, and a path that is no archive gets its own message and exit
    /// 66 (not DAMAGED); export --before that matches nothing says so.
    @Test func dryRunVerifyOfADirectoryAndPathsThatAreNoArchive() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 40, days: 2)
            let dir = try TestPaths.temporaryDirectory()
            let p = try firstPartition(conn)
            let messages = try conn.scalar(Int.self, SQL(unsafeRaw: "SELECT count(*) FROM chat.\(p.name)"))
            let hours = "\(Int(Date().timeIntervalSince(p.to) / 3600))h"
            let before = try TestDatabase.checksum(conn, "chat.messages", orderBy: "conversation_id, message_id")
            let dry = try runCommand(TestPaths.binary, ["partitions", "retire", "--older-than", hours, "--archive-dir", dir, "--dry-run", "--json", "--database-url", settings.conninfo])
            #expect(dry.status == 0, "\(dry.stderr)")
            let plan = try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as! [[String: Any]]
            let mine = plan.first { $0["partition"] as? String == p.name }
            #expect(mine?["steps"] as? [String] == ["export", "verify", "detach", "drop"])
            #expect(mine?["messages"] as? Int == messages)
            #expect(try TestDatabase.checksum(conn, "chat.messages", orderBy: "conversation_id, message_id") == before)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
            // Two archives in one directory: verify of the directory checks both.
            let export = try runCommand(TestPaths.binary, ["archive", "export", "--before", String(PostgresTimestamp.format(p.to.addingTimeInterval(86_400)).prefix(10)), "--archive-dir", dir, "--database-url", settings.conninfo])
            #expect(export.status == 0, "\(export.stderr)")
            let all = try runCommand(TestPaths.binary, ["archive", "verify", dir, "--database-url", settings.conninfo])
            #expect(all.status == 0 && all.stdout.split(separator: "\n").filter { $0.hasPrefix("ok: ") }.count >= 2, "\(all.stdout) \(all.stderr)")
            let manifest = try runCommand(TestPaths.binary, ["archive", "verify", "\(dir)/\(p.name)/manifest.json", "--offline"])
            #expect(manifest.status == 0, "\(manifest.stderr)")
            let none = try runCommand(TestPaths.binary, ["archive", "verify", TestPaths.packageRoot + "/Queries", "--offline"])
            #expect(none.status == 66 && none.stderr.contains("is not an archive") && !none.stdout.contains("DAMAGED"), "\(none.stdout) \(none.stderr)")
            let nothing = try runCommand(TestPaths.binary, ["archive", "export", "--before", "2001-01-01", "--archive-dir", dir, "--database-url", settings.conninfo])
            #expect(nothing.status == 0 && nothing.stderr.contains("nothing archived"), "\(nothing.stderr)")
        }
    }

    /// Nothing hidden: a detached table and a ledger that says "dropped" for a restored range are
    /// reported by `partitions status` (exit 4), with what to run.
    @Test func partitionsStatusReportsDetachedTablesAndALedgerThatNoLongerMatches() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 40, days: 2)
            let p = try firstPartition(conn)
            let dir = try TestPaths.temporaryDirectory()
            let pm = PartitionManager(logger: logger)
            #expect(try pm.status(conn).warnings.filter { $0.contains("detached") || $0.contains("chat.archives") }.isEmpty)
            _ = try Retirement(logger: logger).retire(conn, olderThan: p.to, directory: dir, keepTables: true)
            let kept = try pm.status(conn).warnings
            #expect(kept.contains { $0.contains("chat.\(p.name) is detached") }, "\(kept)")
            let cli = try runCommand(TestPaths.binary, ["partitions", "status", "--database-url", settings.conninfo])
            #expect(cli.status == 4 && cli.stderr.contains("is detached"), "\(cli.stdout) \(cli.stderr)")
            // A restore while the range's tables are still detached is refused, changing nothing.
            let partitionsBefore = try conn.scalar(Int.self, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'chat.messages'::regclass")
            let refused = try runCommand(TestPaths.binary, ["archive", "restore", dir + "/" + p.name, "--database-url", settings.conninfo])
            #expect(refused.status == 1 && refused.stderr.contains("exists but is not attached"), "\(refused.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'chat.messages'::regclass") == partitionsBefore)
            // Finish the retirement (drop), then restore: the ledger records the restore, so the
            // attached partition is no contradiction.
            _ = try Retirement(logger: logger).retire(conn, olderThan: p.to, directory: dir, keepTables: false)
            #expect(try pm.status(conn).warnings.filter { $0.contains("detached") }.isEmpty)
            _ = try ArchiveRestorer(logger: logger).restore(path: dir + "/" + p.name, into: conn)
            #expect(try pm.status(conn).warnings.filter { $0.contains("chat.archives") || $0.contains("detached") }.isEmpty)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.archives WHERE partition_name = \(p.name) AND restored_at IS NOT NULL") == 1)
            // Retired again: the ledger says dropped again, not restored; still nothing reported.
            let again = try Retirement(logger: logger).retire(conn, olderThan: p.to, directory: dir, keepTables: false)
            #expect(again.first?.steps.contains("drop") == true, "\(again)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.archives WHERE partition_name = \(p.name) AND dropped_at IS NOT NULL AND restored_at IS NULL") >= 1)
            #expect(try pm.status(conn).warnings.filter { $0.contains("chat.archives") || $0.contains("detached") }.isEmpty)
            // A ledger that says dropped while the partition is attached, with no restore recorded
            // (someone reattached it by hand), is still reported. (The rows a restore brings back
            // are new writes to the range, so retiring it again wrote a new archive: the current one.)
            _ = try ArchiveRestorer(logger: logger).restore(path: try #require(again.first?.path), into: conn)
            try conn.execute("UPDATE chat.archives SET restored_at = NULL WHERE partition_name = \(p.name)")
            let hidden = try pm.status(conn).warnings
            #expect(hidden.contains { $0.contains("says \(p.name) was dropped") && $0.contains("attached") }, "\(hidden)")
        }
    }
}