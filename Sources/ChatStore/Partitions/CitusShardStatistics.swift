import ChatStorePostgres
import Foundation

/// Sizes and row estimates of the tables of schema `chat` on Citus, summed over their shards.
///
/// On Citus the coordinator's copy of a distributed table is an empty shell, so
/// `pg_total_relation_size` and `reltuples` there say nothing. Sizes come from `citus_shards`
/// and row estimates from each node's `pg_class` (`run_command_on_all_nodes`): two queries for
/// every table at once, where a call per partition would open connections per shard.
struct CitusShardStatistics {
    /// Bytes of each distributed table (by its name in `chat`), indexes and TOAST included.
    var bytes: [String: Int64] = [:]
    /// Estimated rows of each distributed table, from the shards' statistics.
    var rows: [String: Int64] = [:]

    init(_ conn: PostgresConnection) throws {
        for row in try conn.query("""
            SELECT p.logicalrelid::regclass::text AS name, coalesce(sum(s.shard_size), 0)::bigint AS bytes
            FROM pg_dist_partition p LEFT JOIN citus_shards s ON s.table_name = p.logicalrelid
            WHERE p.logicalrelid::regclass::text LIKE 'chat.%'
            GROUP BY 1
            """) {
            bytes[Self.tableName(try row.decode(String.self, "name"))] = try row.decode(Int64.self, "bytes")
        }
        // Shard tables are named <table>_<shard id> on the nodes that hold them.
        let perNode = try conn.query("""
            SELECT result FROM run_command_on_all_nodes($$
                SELECT coalesce(json_object_agg(base, n), '{}')::text FROM (
                    SELECT regexp_replace(c.relname, '_[0-9]+$', '') AS base, sum(greatest(c.reltuples, 0))::bigint AS n
                    FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
                    WHERE ns.nspname = 'chat' AND c.relkind = 'r' AND c.relname ~ '_[0-9]+$'
                    GROUP BY 1) x
                $$) WHERE success
            """)
        for row in perNode {
            let text = try row.decode(String.self, "result")
            guard let data = text.data(using: .utf8),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            for (name, value) in object {
                guard bytes[name] != nil, let n = (value as? NSNumber)?.int64Value else { continue }
                rows[name, default: 0] += n
            }
        }
    }

    /// `chat.messages_p20261129` or `chat."odd name"` → the bare table name.
    static func tableName(_ qualified: String) -> String {
        var name = qualified.hasPrefix("chat.") ? String(qualified.dropFirst(5)) : qualified
        if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 {
            name = String(name.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"")
        }
        return name
    }
}
