import ChatStorePostgres
import Foundation

/// How the schema is distributed on Citus: conversation-scoped tables by `conversation_id`,
/// colocated with `chat.conversations`; user-scoped tables by `user_id` in their own colocation
/// group; small global tables as reference tables; ledgers stay local on the coordinator.
public enum CitusPlan {
    /// Tables distributed by `conversation_id`, in an order that respects foreign keys.
    public static let conversationTables = [
        "conversations", "members", "media", "messages", "send_dedup", "receipts", "delivery_attempts", "dead_letters",
        "unread_counts", "unread_messages", "receipt_repairs", "receipt_anomalies",
    ]
    /// Tables distributed by `user_id`.
    public static let userTables = ["presence_events", "user_last_seen", "daily_activity"]
    /// Reference tables (replicated to every node).
    public static let referenceTables = ["users", "partition_config", "daily_summary"]
    /// Tables left on the coordinator.
    public static let localTables = ["job_runs", "archives", "schema_migrations", "schema_migration_steps"]

    /// The statements, in order.
    public static var statements: [String] {
        var out = referenceTables.map { "SELECT create_reference_table('chat.\($0)');" }
        out.append("SELECT create_distributed_table('chat.conversations', 'conversation_id', colocate_with => 'none');")
        for t in conversationTables.dropFirst() {
            out.append("SELECT create_distributed_table('chat.\(t)', 'conversation_id', colocate_with => 'chat.conversations');")
        }
        out.append("SELECT create_distributed_table('chat.\(userTables[0])', 'user_id', colocate_with => 'none');")
        for t in userTables.dropFirst() {
            out.append("SELECT create_distributed_table('chat.\(t)', 'user_id', colocate_with => 'chat.\(userTables[0])');")
        }
        return out
    }

    /// True when the `citus` extension is installed in the connected database.
    public static func isAvailable(_ conn: PostgresConnection) throws -> Bool {
        try conn.scalar(Bool.self, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
    }

    /// Runs the plan (each statement in order; tables already distributed are skipped).
    /// - Throws: `PartitionError` when the extension is missing.
    public static func apply(_ conn: PostgresConnection) throws -> [String] {
        guard try isAvailable(conn) else {
            throw PartitionError("the citus extension is not installed in this database (CREATE EXTENSION citus); use `chatstore migrate plan --citus` to see the statements")
        }
        var done: [String] = []
        for s in statements {
            let table = s.split(separator: "'")[1]
            let already = try conn.scalar(Bool.self, "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = \(String(table))::regclass)")
            if already { continue }
            try conn.execute(SQL(unsafeRaw: s))
            done.append(s)
        }
        return done
    }
}
