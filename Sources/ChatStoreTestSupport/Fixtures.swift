import ChatStore
import ChatStorePostgres
import Foundation

extension TestDatabase {
    /// A fresh database migrated to the latest schema.
    public static func migrated<T>(onCitus citus: Bool = TestDatabase.onCitus,
                                   _ body: (PostgresConnection, ConnectionSettings) throws -> T) throws -> T {
        try withSettings(onCitus: citus) { conn, settings in
            try Migrator(migrations: Migration.embedded(), logger: logger).migrate(connection: conn)
            if citus { _ = try CitusPlan.apply(conn) }
            return try body(conn, settings)
        }
    }

    /// Inserts two users and a direct conversation between them (ids 1, 2 and conversation 100).
    public static func seedConversation(_ conn: PostgresConnection) throws {
        try conn.executeScript("""
            INSERT INTO chat.users (user_id, handle, display_name) VALUES (1, 'ann', 'Ann'), (2, 'bob', 'Bob');
            INSERT INTO chat.conversations (conversation_id, kind, member_limit, created_by) VALUES (100, 'direct', 2, 1);
            INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (100, 1, '2020-01-01'), (100, 2, '2020-01-01');
            """)
    }
}

extension TestDatabase {
    /// A fixed first day for generated data: 10 days before today, so partitions and "now" line up.
    public static var generatorStart: Date {
        PartitionGranularity.day.floor(Date()).addingTimeInterval(-10 * 86_400)
    }

    /// Generates a workload into a migrated database.
    @discardableResult
    public static func generate(_ settings: ConnectionSettings, users: Int = 200, days: Int = 5, seed: UInt64 = 7,
                                anomalyRate: Double = 0.01) throws -> AnswerKey {
        var cfg = WorkloadConfig(users: users, days: days, seed: seed, start: generatorStart)
        cfg.anomalyRate = anomalyRate
        return try WorkloadGenerator(config: cfg, logger: logger).load(settings: settings).answerKey
    }

    /// The database's rows as NDJSON events in time order (`scripts/bench/events-in-time-order.sql`,
    /// as the ingest benchmark writes them), one line each.
    public static func eventsInTimeOrder(_ conn: PostgresConnection) throws -> [String] {
        let script = try String(contentsOfFile: TestPaths.packageRoot + "/scripts/bench/events-in-time-order.sql", encoding: .utf8)
        let query = script.split(separator: "\n").filter { !$0.hasPrefix("--") }.joined(separator: "\n")
            .trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(in: CharacterSet(charactersIn: ";"))
        return try conn.query(SQL(unsafeRaw: query)).map { try $0.decode(String.self, at: 0) }
    }

    /// md5 of a table's rows in a stable order (every column but `change_xid`, which records
    /// the writing transaction and so differs between two loads of the same rows).
    public static func checksum(_ conn: PostgresConnection, _ table: String, orderBy: String) throws -> String {
        // MATERIALIZED: the rows are made JSON on the coordinator; on Citus a whole-row
        // reference to a subquery pushed down to the shards loses its column names (f1, f2, ...).
        try conn.scalar(String.self, SQL(unsafeRaw: "WITH t AS MATERIALIZED (SELECT * FROM \(table) x) SELECT coalesce(md5(string_agg((to_jsonb(t) - 'change_xid')::text, E'\\n' ORDER BY \(orderBy))), 'empty') FROM t"))
    }
}
