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
        let made = try runCommand(script, ["createdb", String(name)])
        guard made.status == 0 else { throw JobError("citus-cluster.sh createdb: \(made.stderr)") }
        defer { _ = try? runCommand(script, ["dropdb", String(name)]) }
        let url = try runCommand(script, ["url", String(name)]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return try body(url)
    }
}
