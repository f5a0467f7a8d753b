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
    public static let localTables = ["job_runs", "archives", "schema_migrations", "schema_migration_steps", "last_seen_cells", "last_seen_state"]

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

    /// Runs the plan in one transaction: tables already distributed are skipped, so it is
    /// idempotent, and a failure leaves the database as it was.
    ///
    /// What a real cluster needs beyond the statements (docs/citus.md):
    /// - foreign keys from the tables to be distributed to the future reference tables are
    ///   dropped first and added back at the end: with them in place, `create_reference_table`
    ///   would turn the whole foreign-key graph into Citus local tables, which fails on the
    ///   partitioned tables;
    /// - `citus.multi_shard_modify_mode = sequential`: a transaction that has changed a reference
    ///   table cannot then run parallel DDL on a distributed table;
    /// - rows already in a table are copied into its shards by Citus and then removed from the
    ///   coordinator's own copy (`truncate_local_data_after_distributing_table`), so they exist in
    ///   the shards and nowhere else.
    /// - Throws: `PartitionError` when the extension is missing or the schema is not at the
    ///   latest version this binary knows (tables a later migration adds would stay local).
    public static func apply(_ conn: PostgresConnection, latestVersion: Int? = nil) throws -> [String] {
        guard try isAvailable(conn) else {
            throw PartitionError("the citus extension is not installed in this database (CREATE EXTENSION citus); use `chatstore migrate plan --citus` to see the statements")
        }
        if let latestVersion {
            let current = try conn.scalar(Int.self, "SELECT coalesce(max(version), 0) FROM chat.schema_migrations")
            guard current == latestVersion else {
                throw PartitionError("the schema is at version \(current), not \(latestVersion): distribute with --citus after migrating to the latest version (without --to), so that every table is distributed")
            }
        }
        return try conn.transaction { c -> [String] in
            try c.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
            func distributed(_ table: String) throws -> Bool {
                try c.scalar(Bool.self, "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = \("chat." + table)::regclass)")
            }
            // Foreign keys into the reference tables, from tables not yet distributed.
            let pending = try (conversationTables + userTables).filter { !(try distributed($0)) }
            var saved: [(table: String, name: String, definition: String)] = []
            for row in try c.query("""
                SELECT src.relname AS tbl, con.conname AS name, pg_get_constraintdef(con.oid) AS def
                FROM pg_constraint con
                JOIN pg_class src ON src.oid = con.conrelid JOIN pg_class dst ON dst.oid = con.confrelid
                JOIN pg_namespace n ON n.oid = src.relnamespace
                WHERE con.contype = 'f' AND n.nspname = 'chat' AND con.conparentid = 0
                  AND src.relname = ANY(string_to_array(\(pending.joined(separator: ",")), ','))
                  AND dst.relname = ANY(string_to_array(\(referenceTables.joined(separator: ",")), ','))
                ORDER BY 1, 2
                """) {
                saved.append((try row.decode(String.self, "tbl"), try row.decode(String.self, "name"), try row.decode(String.self, "def")))
            }
            for fk in saved {
                try c.execute(SQL(unsafeRaw: "ALTER TABLE chat.\(c.quoteIdentifier(fk.table)) DROP CONSTRAINT \(c.quoteIdentifier(fk.name))"))
            }
            var done: [String] = []
            var hadRows: [String] = []
            for s in statements {
                let table = String(s.split(separator: "'")[1].dropFirst("chat.".count))
                if try distributed(table) { continue }
                if try c.scalar(Bool.self, SQL(unsafeRaw: "SELECT EXISTS (SELECT 1 FROM chat.\(c.quoteIdentifier(table)))")) { hadRows.append(table) }
                try c.execute(SQL(unsafeRaw: s))
                done.append(s)
            }
            for fk in saved {
                let s = "ALTER TABLE chat.\(c.quoteIdentifier(fk.table)) ADD CONSTRAINT \(c.quoteIdentifier(fk.name)) \(fk.definition);"
                try c.execute(SQL(unsafeRaw: s))
                done.append(s)
            }
            // Distributed and reference tables with rows: the shards hold them now; the
            // coordinator's own copy goes (referencing tables first).
            for table in hadRows.reversed() {
                let s = "SELECT truncate_local_data_after_distributing_table('chat.\(table)');"
                try c.execute(SQL(unsafeRaw: s))
                done.append(s)
            }
            return done
        }
    }
}
