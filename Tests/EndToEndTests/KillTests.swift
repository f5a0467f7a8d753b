import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct KillTests {
    /// Starts the binary with `arguments` once per delay and kills it (SIGKILL) after that delay,
    /// each next run starting at once, with no waiting for the killed client's backend (as cron's
    /// retry or an operator would). Returns how many runs were killed before they finished.
    func killRepeatedly(_ arguments: [String], after delays: [Double]) throws -> Int {
        var killed = 0
        for delay in delays {
            let pid = try spawnCommand(TestPaths.binary, arguments)
            Thread.sleep(forTimeInterval: delay)
            kill(pid, SIGKILL)
            if waitCommand(pid) == 128 + SIGKILL { killed += 1 }
        }
        return killed
    }

    /// The state the nightly jobs produce, independent of when they ran.
    func outcome(_ conn: PostgresConnection) throws -> [String] {
        [
            try TestDatabase.checksum(conn, "(SELECT conversation_id, user_id, unread, last_message_at FROM chat.unread_counts)", orderBy: "conversation_id, user_id")
                .appending(":\(try conn.scalar(Int.self, "SELECT count(*) FROM chat.unread_counts"))"),
            try TestDatabase.checksum(conn, "(SELECT conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at FROM chat.receipts)",
                                      orderBy: "conversation_id, message_id, recipient_id, sent_at"),
            try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day"),
            try TestDatabase.checksum(conn, "(SELECT conversation_id, message_id, recipient_id, receipt_sent_at, category, action FROM chat.receipt_repairs)",
                                      orderBy: "conversation_id, message_id, recipient_id, receipt_sent_at, category, action"),
            String(try conn.scalar(Int.self, "SELECT count(*) FROM chat.delivery_attempts")),
        ]
    }

    @Test func nightlyKilledAtAnyInstantThenRerunEqualsAnUninterruptedRun() throws {
        // Reference: one uninterrupted run.
        let reference = try TestDatabase.migrated { conn, settings -> [String] in
            try TestDatabase.generate(settings, users: 700, days: 4, seed: 11)
            let r = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--repair-receipts", "--database-url", settings.conninfo])
            #expect(r.status == 2 || r.status == 0, "\(r.stderr)")
            return try outcome(conn)
        }
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 700, days: 4, seed: 11)
            let killedMidRun = try killRepeatedly(["nightly", "--quiet", "--repair-receipts", "--database-url", settings.conninfo], after: [0.05, 0.15, 0.3, 0.45, 0.6, 0.8, 1.0])
            #expect(killedMidRun >= 3)
            let r = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--repair-receipts", "--database-url", settings.conninfo])
            #expect(r.status == 0 || r.status == 2, "\(r.stderr)")
            let got = try outcome(conn)
            for (i, (a, b)) in zip(got, reference).enumerated() { #expect(a == b, "outcome part \(i)") }
            // Interrupted runs are marked failed in the ledger, none left 'running'.
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.job_runs WHERE status = 'running'") == 0)
            let verify = try runCommand(TestPaths.binary, ["jobs", "unread", "--verify", "--database-url", settings.conninfo])
            #expect(verify.status == 0, "\(verify.stdout)")
        }
    }

    /// Everything an ingest writes, independent of when and in how many runs (no `updated_at`).
    func ingested(_ conn: PostgresConnection) throws -> [String] {
        try [("chat.users", "user_id"), ("chat.conversations", "conversation_id"),
             ("(SELECT conversation_id, user_id, joined_at, left_at, role FROM chat.members)", "conversation_id, user_id, joined_at"),
             ("chat.messages", "conversation_id, message_id"), ("chat.send_dedup", "conversation_id, sender_id, client_message_id"),
             ("(SELECT conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at FROM chat.receipts)", "conversation_id, message_id, recipient_id"),
             ("chat.presence_events", "user_id, occurred_at, device_id")]
            .map { try TestDatabase.checksum(conn, $0.0, orderBy: $0.1) + ":" + String(try conn.scalar(Int.self, SQL(unsafeRaw: "SELECT count(*) FROM \($0.0) t"))) }
    }

    /// Ingest commits batch by batch and holds some deliveries back for a few batches: a run
    /// killed at any instant, then run again, must leave exactly what one uninterrupted run does.
    @Test func ingestKilledAtAnyInstantThenRerunEqualsAnUninterruptedRun() throws {
        let dir = try TestPaths.temporaryDirectory()
        let events = dir + "/events.ndjson"
        // A generated workload written as events in time order (as the benchmark does).
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 150, days: 3, seed: 5)
            let lines = try TestDatabase.eventsInTimeOrder(conn)
            try (lines.joined(separator: "\n") + "\n").write(toFile: events, atomically: true, encoding: .utf8)
        }
        func prepare(_ conn: PostgresConnection) throws {
            _ = try PartitionManager(logger: TestDatabase.logger).ensureRange(
                conn, from: TestDatabase.generatorStart.addingTimeInterval(-86_400), until: Date().addingTimeInterval(2 * 86_400))
        }
        let args = ["ingest", "--quiet", "--batch-size", "300", events]
        var seconds = 0.0
        let reference = try TestDatabase.migrated { conn, settings -> [String] in
            try prepare(conn)
            let start = Date()
            let r = try runCommand(TestPaths.binary, args + ["--database-url", settings.conninfo])
            seconds = Date().timeIntervalSince(start)
            #expect(r.status == 0, "\(r.stderr)")
            return try ingested(conn)
        }
        try TestDatabase.migrated { conn, settings in
            try prepare(conn)
            let killedMidRun = try killRepeatedly(args + ["--database-url", settings.conninfo], after: [0.1, 0.3, 0.5, 0.7, 0.85].map { fraction in seconds * fraction })
            #expect(killedMidRun >= 3, "the run takes \(seconds) s")
            let r = try runCommand(TestPaths.binary, args + ["--json", "--database-url", settings.conninfo])
            #expect(r.status == 0, "\(r.stderr)")
            let got = try ingested(conn)
            for (i, (a, b)) in zip(got, reference).enumerated() { #expect(a == b, "table \(i)") }
        }
    }

    /// `partitions retire` killed at any instant, then run again at once: every message and
    /// receipt is in exactly one place, live or in the verified archive the ledger names for a
    /// dropped range, and nothing is left detached or half-recorded.
    @Test func retireKilledAtAnyInstantThenRerunAtOnceLosesNothing() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 700, days: 5, seed: 3)
            let messages = try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages")
            let receipts = try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts")
            let dir = try TestPaths.temporaryDirectory()
            let args = ["partitions", "retire", "--older-than", "1d", "--archive-dir", dir, "--quiet", "--database-url", settings.conninfo]
            // Kills early and often: each rerun resumes from the ledger, and since the export reads
            // binary COPY a whole retire of these five days can finish within ~1 s.
            let killedMidRun = try killRepeatedly(args, after: [0.1, 0.2, 0.35, 0.5, 0.7, 0.9, 1.4, 2.0, 2.8])
            #expect(killedMidRun >= 3)
            let r = try runCommand(TestPaths.binary, args)
            #expect(r.status == 0, "\(r.stderr)")
            // Everything dropped is in the newest verified archive of its range; the rest is live.
            var archived = (messages: 0, receipts: 0)
            for row in try conn.query("""
                SELECT DISTINCT ON (partition_name) partition_name, path FROM chat.archives
                WHERE parent_table = 'messages' AND dropped_at IS NOT NULL ORDER BY partition_name, archive_id DESC
                """) {
                let report = try ArchiveVerifier().verify(path: try row.decode(String.self, "path"), connection: nil)
                #expect(report.ok, "\(report.problems)")
                archived.messages += report.rows["messages"] ?? 0
                archived.receipts += report.rows["receipts"] ?? 0
            }
            #expect(archived.messages > 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages") + archived.messages == messages)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts") + archived.receipts == receipts)
            let status = try runCommand(TestPaths.binary, ["partitions", "status", "--database-url", settings.conninfo])
            #expect(!status.stderr.contains("detached") && !status.stderr.contains("ledger"), "\(status.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.archives WHERE detached_at IS NOT NULL AND dropped_at IS NULL") == 0)
        }
    }

    /// `migrate` killed inside a migration whose statements run for seconds (a transactional
    /// one and a CREATE INDEX CONCURRENTLY one), then run again at once: it waits for the lock the
    /// dead client's backend held (released within a second or two), resumes, and ends at the
    /// latest version with a valid index.
    @Test func migrateKilledAtAnyInstantThenRerunAtOnceConverges() throws {
        let dir = try TestPaths.temporaryDirectory() + "/migrations"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for m in try Migration.embedded() { try m.text.write(toFile: dir + "/" + m.fileName, atomically: true, encoding: .utf8) }
        try "CREATE TABLE chat.slow_step (x int);\nSELECT pg_sleep(1.5);\nINSERT INTO chat.slow_step SELECT count(*) FROM chat.receipts;\nCREATE TABLE chat.receipt_copy AS SELECT * FROM chat.receipts;\n"
            .write(toFile: dir + "/0900_slow.sql", atomically: true, encoding: .utf8)
        try "-- chatstore:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS receipts_read_at_test ON chat.receipt_copy (read_at, recipient_id);\nSELECT pg_sleep(1);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS messages_body_test ON chat.receipt_copy (message_id, delivered_at);\n"
            .write(toFile: dir + "/0901_index.sql", atomically: true, encoding: .utf8)
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 700, days: 4, seed: 9)
            let args = ["migrate", "--quiet", "--migrations-dir", dir, "--database-url", settings.conninfo]
            let killedMidRun = try killRepeatedly(args, after: [0.3, 0.8, 1.3, 1.9, 2.5, 3.2])
            #expect(killedMidRun >= 3)
            let r = try runCommand(TestPaths.binary, args)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT max(version) FROM chat.schema_migrations WHERE completed") == 901)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.schema_migrations WHERE NOT completed") == 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.slow_step") == 1)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.slow_step WHERE x = (SELECT count(*) FROM chat.receipts)") == 1)
            #expect(try conn.scalar(Int.self, """
                SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE c.relname IN ('receipts_read_at_test', 'messages_body_test') AND i.indisvalid
                """) == 2)
            let check = try runCommand(TestPaths.binary, ["migrate", "status", "--check", "--migrations-dir", dir, "--database-url", settings.conninfo])
            #expect(check.status == 0, "\(check.stderr)")
        }
    }
}
