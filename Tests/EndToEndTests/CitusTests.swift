import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

/// The same commands on a real Citus cluster (a coordinator and two workers, started by
/// `scripts/citus-cluster.sh`) and on plain PostgreSQL, on the same generated input, with the same
/// results. Runs when `CHATSTORE_TEST_CITUS=1` and Citus is installed into PostgreSQL 15;
/// otherwise every test here is reported as skipped, with the reason.
@Suite(.enabled(if: CitusCluster.available, CitusCluster.reason), .serialized)
struct CitusTests {
    @Test func migrateCitusWorksOnAFreshDatabaseAndOnOneWithRowsAndIsIdempotent() throws {
        try CitusCluster.withDatabase { url in
            let fresh = try runCommand(TestPaths.binary, ["migrate", "--citus", "--database-url", url])
            #expect(fresh.status == 0, "\(fresh.stderr)")
            let again = try runCommand(TestPaths.binary, ["migrate", "--citus", "--json", "--database-url", url])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("\"citus\" : [\n\n  ]") || again.stdout.contains("\"citus\" : []"), "\(again.stdout)")
            let conn = try PostgresConnection(settings: ConnectionSettings(conninfo: url, source: .option), logger: TestDatabase.logger)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid WHERE p.logicalrelid::text LIKE 'chat.%' AND NOT c.relispartition")
                    == CitusPlan.conversationTables.count + CitusPlan.userTables.count + CitusPlan.referenceTables.count)
            let to = try runCommand(TestPaths.binary, ["migrate", "--to", "1", "--citus", "--database-url", url])
            #expect(to.status == 64, "\(to.stderr)")
        }
        try CitusCluster.withDatabase { url in
            #expect(try runCommand(TestPaths.binary, ["migrate", "-q", "--database-url", url]).status == 0)
            let gen = try runCommand(TestPaths.binary, ["generate", "--quiet", "--users", "120", "--days", "2", "--seed", "4", "--database-url", url])
            #expect(gen.status == 0, "\(gen.stderr)")
            let conn = try PostgresConnection(settings: ConnectionSettings(conninfo: url, source: .option), logger: TestDatabase.logger)
            let before = try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts")
            let r = try runCommand(TestPaths.binary, ["migrate", "--citus", "--database-url", url])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts") == before)
            // The rows are in the shards and nowhere else: the coordinator's own tables are empty.
            let local = try conn.scalar(Int.self, """
                SELECT coalesce(sum(pg_relation_size(c.oid)), 0)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'chat' AND c.relkind = 'r' AND c.relname NOT LIKE 'schema_migration%' AND c.relname NOT IN ('job_runs', 'archives')
                """)
            #expect(local == 0)
        }
    }

    /// The receipt audit gives the same findings on Citus as on plain PostgreSQL for the same
    /// generated workload (the other nightly jobs that do not run there yet: docs/citus.md).
    @Test(.enabled(if: CitusCluster.available, CitusCluster.reason))
    func theReceiptAuditFindsTheSameOnCitusAsOnPostgreSQL() throws {
        func findings(_ url: String) throws -> [String: Int] {
            let r = try runCommand(TestPaths.binary, ["jobs", "receipts", "--json", "--database-url", url])
            #expect(r.status == 0 || r.status == 2, "\(r.stderr)")
            let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            var out: [String: Int] = [:]
            for f in (o?["findings"] as? [[String: Any]]) ?? [] { out[f["category"] as! String] = f["found"] as? Int }
            return out
        }
        let generate = ["generate", "--quiet", "--users", "120", "--days", "2", "--seed", "9", "--start", String(PostgresTimestamp.format(TestDatabase.generatorStart).prefix(10))]
        let onCitus = try CitusCluster.withDatabase { url -> [String: Int] in
            #expect(try runCommand(TestPaths.binary, ["migrate", "-q", "--citus", "--database-url", url]).status == 0)
            #expect(try runCommand(TestPaths.binary, generate + ["--database-url", url]).status == 0)
            return try findings(url)
        }
        let onPostgres = try TestDatabase.migrated { _, settings -> [String: Int] in
            #expect(try runCommand(TestPaths.binary, generate + ["--database-url", settings.conninfo]).status == 0)
            return try findings(settings.conninfo)
        }
        #expect(onCitus.values.reduce(0, +) > 0)
        #expect(onCitus == onPostgres)
    }
}

extension CitusTests {
    /// What the nightly jobs leave behind, as comparable text: every job table's rows (less the
    /// columns that record a transaction id or the wall clock of the write), the receipts after
    /// repair, and each job's counts.
    static func nightlyOutcome(_ conn: PostgresConnection, _ summary: Nightly.Summary) throws -> [String: String] {
        let tables: [String: String] = [
            "unread_counts": "SELECT conversation_id, user_id, unread, last_message_at FROM chat.unread_counts",
            "unread_messages": "SELECT * FROM chat.unread_messages",
            "daily_activity": "SELECT * FROM chat.daily_activity",
            "daily_summary": "SELECT * FROM chat.daily_summary",
            "user_last_seen": "SELECT user_id, last_seen_at, source FROM chat.user_last_seen",
            "dead_letters": "SELECT * FROM chat.dead_letters",
            "delivery_attempts": "SELECT * FROM chat.delivery_attempts",
            "receipt_anomalies": "SELECT conversation_id, message_id, recipient_id, category, row_count, sent_at FROM chat.receipt_anomalies",
            "receipt_repairs": """
                SELECT conversation_id, message_id, recipient_id, category, action, receipt_sent_at,
                       old_value - 'change_xid' - 'updated_at' AS old_value, new_value - 'change_xid' - 'updated_at' AS new_value
                FROM chat.receipt_repairs
                """,
            "receipts": "SELECT conversation_id, message_id, recipient_id, sent_at, status, delivered_at, read_at FROM chat.receipts",
        ]
        var out: [String: String] = [:]
        for (name, query) in tables {
            out[name] = try conn.scalar(String.self, SQL(unsafeRaw: "SELECT count(*) || ' rows ' || coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '') FROM (\(query)) x"))
        }
        for job in summary.jobs {
            out["job " + job.job] = "\(job.status) changed \(job.changed) anomalies \(job.anomalies.sorted { $0.key < $1.key })"
        }
        return out
    }

    /// The same night's writes on both: a message stamped in the past with its undelivered
    /// receipts, late reads of older messages, a leave, deletions and duplicate receipts.
    static func lateWrites(_ conn: PostgresConnection, at now: Date) throws {
        let t = { (s: Double) in PostgresTimestamp.format(now.addingTimeInterval(s)) }
        // INSERT ... SELECT sets change_xid itself, as docs/citus.md asks of writers on Citus.
        let xid = try conn.scalar(Int64.self, "SELECT pg_current_xact_id()::text::bigint")
        try conn.executeScript("""
            INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, change_xid)
            SELECT conversation_id, message_id + 7, sent_at + interval '1 second', sender_id, 'text', 'late', \(xid)
            FROM (SELECT DISTINCT ON (conversation_id) conversation_id, message_id, sent_at, sender_id FROM chat.messages
                  WHERE conversation_id % 5 = 0 ORDER BY conversation_id, sent_at DESC, message_id) m;
            INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, change_xid)
            SELECT m.conversation_id, m.message_id, m.sent_at, mb.user_id, 1, \(xid)
            FROM chat.messages m JOIN chat.members mb ON mb.conversation_id = m.conversation_id AND mb.user_id <> m.sender_id AND mb.left_at IS NULL
            WHERE m.body = 'late'
            ON CONFLICT DO NOTHING;
            UPDATE chat.receipts SET status = 3, read_at = '\(t(-3600))'::timestamptz, delivered_at = least(delivered_at, '\(t(-3700))'::timestamptz), change_xid = DEFAULT
            WHERE status < 3 AND message_id % 5 = 0;
            UPDATE chat.messages SET deleted_at = '\(t(-1800))'::timestamptz, change_xid = DEFAULT WHERE message_id % 37 = 1;
            UPDATE chat.members SET left_at = '\(t(-900))'::timestamptz, change_xid = DEFAULT
            WHERE (conversation_id, user_id) IN (SELECT mb.conversation_id, mb.user_id FROM chat.members mb JOIN chat.conversations c USING (conversation_id)
                                                 WHERE c.kind = 'group' AND mb.role = 'member' AND mb.left_at IS NULL ORDER BY 1, 2 LIMIT 3);
            INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, change_xid)
            SELECT conversation_id, message_id, sent_at + interval '1 microsecond', recipient_id, 2, delivered_at, NULL, \(xid)
            FROM chat.receipts WHERE message_id % 101 = 0 AND status = 3
            ON CONFLICT DO NOTHING;
            """)
    }

    /// Every nightly job gives the same rows and the same counts on Citus as on plain
    /// PostgreSQL for the same input: a generated workload, a first night, the same late,
    /// past-stamped and duplicate writes on both, a second night (with receipt repair), and an
    /// unread verify at 0 drift on both.
    @Test(.enabled(if: CitusCluster.available, CitusCluster.reason))
    func everyNightlyJobGivesTheSameRowsOnCitusAsOnPostgreSQL() throws {
        let now1 = Date(), now2 = now1.addingTimeInterval(3600)
        func nights(onCitus citus: Bool) throws -> [[String: String]] {
            try TestDatabase.migrated(onCitus: citus) { conn, settings in
                try TestDatabase.generate(settings, users: 150, days: 4, seed: 21)
                var nightly = Nightly(logger: TestDatabase.logger)
                nightly.repairReceipts = true
                nightly.now = now1
                let first = try Self.nightlyOutcome(conn, try nightly.run(conn))
                try Self.lateWrites(conn, at: now2)
                nightly.now = now2
                let second = try Self.nightlyOutcome(conn, try nightly.run(conn))
                let verify = try UnreadJob(mode: .verify).run(conn, runner: JobRunner(logger: TestDatabase.logger))
                #expect(verify.driftCount == 0, "citus \(citus): \(verify.drift.prefix(5))")
                return [first, second]
            }
        }
        let onCitus = try nights(onCitus: true)
        let onPostgres = try nights(onCitus: false)
        for night in 0..<2 {
            for key in onPostgres[night].keys.sorted() {
                #expect(onCitus[night][key] == onPostgres[night][key], "night \(night + 1), \(key)")
            }
            #expect(onCitus[night].keys.sorted() == onPostgres[night].keys.sorted())
        }
        // The second night saw the late writes.
        #expect(onPostgres[1]["unread_counts"] != onPostgres[0]["unread_counts"])
        #expect(onPostgres[1]["receipt_repairs"] != onPostgres[0]["receipt_repairs"])
    }
}

/// The Citus cluster of `scripts/citus-cluster.sh`, when tests may use it.
enum CitusCluster {
    static var requested: Bool { ProcessInfo.processInfo.environment["CHATSTORE_TEST_CITUS"] == "1" }
    static var installed: Bool { FileManager.default.fileExists(atPath: "/usr/lib/postgresql/15/lib/citus.so") }
    static var available: Bool { requested && installed }
    static var reason: Comment {
        if !requested { return "Citus tests skipped: set CHATSTORE_TEST_CITUS=1 to run them against scripts/citus-cluster.sh" }
        return "Citus tests skipped: Citus is not installed into PostgreSQL 15 (see docs/citus.md)"
    }
    static var script: String { TestPaths.packageRoot + "/scripts/citus-cluster.sh" }

    /// A fresh database on every node (extension created, workers added), dropped afterwards.
    static func withDatabase<T>(_ body: (String) throws -> T) throws -> T {
        let start = try runCommand(script, ["start"])
        guard start.status == 0 else { throw JobError("citus-cluster.sh start: \(start.stderr)") }
        let name = "ct_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        let made = try runCommand(script, ["createdb", String(name)], environment: TestDatabase.citusEnvironment)
        guard made.status == 0 else { throw JobError("citus-cluster.sh createdb: \(made.stderr)") }
        defer { _ = try? runCommand(script, ["dropdb", String(name)]) }
        let url = try runCommand(script, ["url", String(name)]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return try body(url)
    }
}
