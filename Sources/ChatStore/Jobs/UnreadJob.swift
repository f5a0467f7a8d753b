import ChatStorePostgres
import Foundation
import Logging

/// Maintains `chat.unread_counts`: unread count and last message time per (conversation, member).
///
/// - `incremental` (default): recomputes exactly what changed since the last run's snapshot, in
///   commit order (`Queries/unread_changes.sql`, `unread_reads.sql`, `unread_apply.sql`): each changed message or receipt for its members,
///   each changed membership whole. The first run, with no snapshot, is a full one.
/// - `full`: recomputes every row from scratch (`Queries/unread_full.sql` defines them; the job
///   computes them a chunk of days at a time, `Queries/unread_full_chunk.sql`).
/// - `verify`: compares the tables (counts and unread messages) with a full recompute and reports
///   every pair that drifted, changing nothing.
/// - `repair`: like verify, then fixes the drifted rows.
public struct UnreadJob: Sendable {
    public enum Mode: String, Codable, Sendable { case incremental, full, verify, repair }

    public var mode: Mode = .incremental
    /// The time recorded as this run's watermark (default: now); what the run sees is its snapshot.
    public var now: Date?

    public init(mode: Mode = .incremental) { self.mode = mode }

    /// One row whose stored values differ from a full recompute.
    public struct Drift: Codable, Sendable {
        public var conversationId: Int64
        public var userId: Int64
        public var stored: Int?
        public var expected: Int?
    }

    /// What a run did.
    public struct Report: Codable, Sendable {
        public var mode: Mode
        public var rowsChanged: Int
        public var pairsRecomputed: Int
        public var totalUnread: Int
        public var pairsWithUnread: Int
        public var drift: [Drift]
        public var driftCount: Int
        public var watermark: String
        public var seconds: Double
    }

    public func run(_ conn: PostgresConnection, runner: JobRunner) throws -> Report {
        let t0 = Date()
        let (_, report) = try runner.run("unread", on: conn) { ctx -> JobRunner.Outcome<Report> in
            let c = ctx.connection
            // Citus cannot push down a LATERAL ... OFFSET 0 probe over a temporary table: there,
            // every chunk takes the hash path (which it runs on the shards).
            let citus = try CitusPlan.isAvailable(c)
            let now = self.now ?? Date()
            let watermark = PostgresTimestamp.format(now)
            var mode = self.mode
            if mode == .incremental && ctx.previousSnapshot == nil { mode = .full }
            var changed = 0, recomputed = 0
            var drift: [Drift] = []
            var driftCount = 0
            // The full recompute, a chunk of days of messages at a time (Queries/unread_full_*.sql:
            // the definitions of Queries/unread_full.sql, computed partition by partition).
            // Per chunk, its rows are written (`--full`, `--repair`) or compared (`--verify`) before
            // the next chunk, so no statement and no table holds the whole history's unread rows.
            func recompute(rows: [String]) throws {
                for s in try QueryFile.named("unread_full_setup.sql").statements([:]) { try c.execute(s) }
                let chunk = try QueryFile.named("unread_full_chunk.sql"), perChunk = try rows.map { try QueryFile.named($0) }
                // Up to a week of messages per chunk: each receipts partition is hashed by about
                // one chunk instead of three (a day per chunk took 490 ms a day at 70 days).
                let chunks = try c.dayChunks(of: "chat.messages", maxRows: 200_000)
                for d in chunks {
                    for s in try chunk.statements(["lo": d.lo, "hi": d.hi]) { try c.execute(s) }
                    for f in perChunk { for s in try f.statements(["lo": d.lo, "hi": d.hi]) { try c.execute(s) } }
                }
                // The stretches no chunk covers hold no message: whatever unread rows they have
                // go (or are drift), compared with an empty expected table.
                try c.execute("TRUNCATE pg_temp.unread_expected_messages")
                for (lo, hi) in JobChunking.gaps(chunks.map { ($0.lo, $0.hi) }) {
                    for f in perChunk { for s in try f.statements(["lo": lo, "hi": hi]) { try c.execute(s) } }
                }
                for s in try QueryFile.named("unread_full_counts.sql").statements([:]) { try c.execute(s) }
            }
            func applyFull() throws -> Int {
                var n = 0
                // The counts (the unread rows were written chunk by chunk, as their detail).
                for s in try QueryFile.named("unread_apply_full.sql").statements([:]) { n += try c.executeCountingRows(s) }
                return n
            }
            switch mode {
            case .full:
                try recompute(rows: ["unread_apply_full_rows.sql"])
                changed = try applyFull()
            case .verify, .repair:
                // Repair compares each chunk's rows first (the drift reported), then writes them.
                try recompute(rows: mode == .repair ? ["unread_verify_rows.sql", "unread_apply_full_rows.sql"] : ["unread_verify_rows.sql"])
                // A pair drifts when its count or last message time differs, or when its unread
                // messages (chat.unread_messages, which the incremental runs keep) differ.
                let rows = try c.query("""
                    WITH rows_drift AS (
                        SELECT DISTINCT conversation_id, user_id FROM pg_temp.unread_rows_drift
                    ), counts_drift AS (
                        SELECT coalesce(e.conversation_id, u.conversation_id) AS conversation_id, coalesce(e.user_id, u.user_id) AS user_id
                        FROM pg_temp.unread_expected e
                        FULL JOIN chat.unread_counts u ON u.conversation_id = e.conversation_id AND u.user_id = e.user_id
                        WHERE u.unread IS DISTINCT FROM e.unread OR u.last_message_at IS DISTINCT FROM e.last_message_at
                    )
                    SELECT d.conversation_id, d.user_id, u.unread AS stored, e.unread AS expected
                    FROM (SELECT * FROM rows_drift UNION SELECT * FROM counts_drift) d
                    LEFT JOIN chat.unread_counts u ON u.conversation_id = d.conversation_id AND u.user_id = d.user_id
                    LEFT JOIN pg_temp.unread_expected e ON e.conversation_id = d.conversation_id AND e.user_id = d.user_id
                    ORDER BY 1, 2
                    """)
                driftCount = rows.count
                drift = try rows.prefix(100).map {
                    Drift(conversationId: try $0.decode(Int64.self, "conversation_id"), userId: try $0.decode(Int64.self, "user_id"),
                          stored: try $0.decode(Int?.self, "stored"), expected: try $0.decode(Int?.self, "expected"))
                }
                if mode == .repair { changed = try applyFull() }
            case .incremental:
                for s in try QueryFile.named("unread_changes.sql").statements(ctx.changeVariables) { try c.execute(s) }
                // The items' read receipts, a chunk of days at a time (constant partition bounds).
                let reads = try QueryFile.named("unread_reads.sql")
                for d in try c.dayChunks(of: "pg_temp.unread_changed_messages", probing: !citus) {
                    try c.execute(try reads.statement(["lo": d.lo, "hi": d.hi, "by_key": d.probeByKey && !citus ? "true" : "false"]))
                }
                try c.execute("ANALYZE pg_temp.unread_item_reads")
                let apply = try QueryFile.named("unread_apply.sql").statements([:])
                // The last three statements write chat.unread_counts.
                for (i, s) in apply.enumerated() {
                    if i >= apply.count - 3 { changed += try c.executeCountingRows(s) } else { try c.execute(s) }
                }
                recomputed = try c.scalar(Int.self, "SELECT count(*) FROM pg_temp.unread_touched")
            }
            let totals = try c.queryOne("SELECT coalesce(sum(unread), 0)::bigint AS total, count(*) FILTER (WHERE unread > 0) AS pairs FROM chat.unread_counts")!
            let report = Report(mode: mode, rowsChanged: changed, pairsRecomputed: recomputed,
                                totalUnread: try totals.decode(Int.self, "total"), pairsWithUnread: try totals.decode(Int.self, "pairs"),
                                drift: drift, driftCount: driftCount, watermark: watermark, seconds: Date().timeIntervalSince(t0))
            // verify changes nothing, so it does not move the starting point of the next run.
            return JobRunner.Outcome(stats: report, watermark: mode == .verify ? nil : watermark, recordSnapshot: mode != .verify)
        }
        return report
    }
}
