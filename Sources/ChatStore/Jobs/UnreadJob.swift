import ChatStorePostgres
import Foundation
import Logging

/// Maintains `chat.unread_counts`: unread count and last message time per (conversation, member).
///
/// - `incremental` (default): applies the changes since the last run's watermark
///   (`Queries/unread_incremental.sql`), recomputing in full only the members who joined or left.
///   The first run, with no watermark, is a full one.
/// - `full`: recomputes every row from scratch (`Queries/unread_full.sql`).
/// - `verify`: compares the table with a full recompute and reports every drift, changing nothing.
/// - `repair`: like verify, then fixes the drifted rows.
public struct UnreadJob: Sendable {
    public enum Mode: String, Codable, Sendable { case incremental, full, verify, repair }

    public var mode: Mode = .incremental
    /// The watermark for this run (default: now).
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
            let now = self.now ?? Date()
            let watermark = PostgresTimestamp.format(now)
            var mode = self.mode
            if mode == .incremental && ctx.previousWatermark == nil { mode = .full }
            var changed = 0, recomputed = 0
            var drift: [Drift] = []
            var driftCount = 0
            let full = try QueryFile.named("unread_full.sql").statement()
            switch mode {
            case .full:
                try c.execute("CREATE TEMP TABLE unread_expected ON COMMIT DROP AS \(full)")
                changed = try applyExpected(c, pairsOnly: false)
            case .verify, .repair:
                try c.execute("CREATE TEMP TABLE unread_expected ON COMMIT DROP AS \(full)")
                let rows = try c.query("""
                    SELECT coalesce(e.conversation_id, u.conversation_id) AS conversation_id, coalesce(e.user_id, u.user_id) AS user_id,
                           u.unread AS stored, e.unread AS expected
                    FROM pg_temp.unread_expected e
                    FULL JOIN chat.unread_counts u ON u.conversation_id = e.conversation_id AND u.user_id = e.user_id
                    WHERE u.unread IS DISTINCT FROM e.unread OR u.last_message_at IS DISTINCT FROM e.last_message_at
                    ORDER BY 1, 2
                    """)
                driftCount = rows.count
                drift = try rows.prefix(100).map {
                    Drift(conversationId: try $0.decode(Int64.self, "conversation_id"), userId: try $0.decode(Int64.self, "user_id"),
                          stored: try $0.decode(Int?.self, "stored"), expected: try $0.decode(Int?.self, "expected"))
                }
                if mode == .repair { changed = try applyExpected(c, pairsOnly: false) }
            case .incremental:
                let prev = ctx.previousWatermark!
                // Members who joined or left since the last run: recompute those pairs in full.
                try c.execute("CREATE TEMP TABLE unread_pairs ON COMMIT DROP AS \(try QueryFile.named("unread_pairs.sql").statement(["prev": prev]))")
                recomputed = try c.scalar(Int.self, "SELECT count(*) FROM pg_temp.unread_pairs")
                if recomputed > 0 {
                    let pairs = try QueryFile.named("unread_pairs_recompute.sql").statement()
                    try c.execute("CREATE TEMP TABLE unread_expected ON COMMIT DROP AS \(pairs)")
                    changed += try applyExpected(c, pairsOnly: true)
                }
                let delta = try QueryFile.named("unread_incremental.sql").statement(["prev": prev, "now": watermark])
                try c.execute("CREATE TEMP TABLE unread_delta ON COMMIT DROP AS \(delta)")
                changed += try c.execute("""
                    UPDATE chat.unread_counts u
                       SET unread = greatest(0, u.unread + d.plus - d.minus),
                           last_message_at = greatest(u.last_message_at, d.last_message_at), updated_at = now()
                      FROM pg_temp.unread_delta d
                     WHERE u.conversation_id = d.conversation_id AND u.user_id = d.user_id
                       AND (d.plus <> d.minus OR d.last_message_at > u.last_message_at OR u.last_message_at IS NULL)
                    """).affectedRows
                changed += try c.execute("""
                    INSERT INTO chat.unread_counts (conversation_id, user_id, unread, last_message_at, updated_at)
                    SELECT d.conversation_id, d.user_id, greatest(0, d.plus - d.minus), d.last_message_at, now()
                    FROM pg_temp.unread_delta d
                    WHERE NOT EXISTS (SELECT 1 FROM chat.unread_counts u WHERE u.conversation_id = d.conversation_id AND u.user_id = d.user_id)
                    """).affectedRows
            }
            let totals = try c.queryOne("SELECT coalesce(sum(unread), 0)::bigint AS total, count(*) FILTER (WHERE unread > 0) AS pairs FROM chat.unread_counts")!
            let report = Report(mode: mode, rowsChanged: changed, pairsRecomputed: recomputed,
                                totalUnread: try totals.decode(Int.self, "total"), pairsWithUnread: try totals.decode(Int.self, "pairs"),
                                drift: drift, driftCount: driftCount, watermark: watermark, seconds: Date().timeIntervalSince(t0))
            // verify changes nothing, so it does not move the watermark.
            return JobRunner.Outcome(stats: report, watermark: mode == .verify ? nil : watermark)
        }
        return report
    }

    /// Writes `pg_temp.unread_expected` into `chat.unread_counts`: upserts changed rows and deletes
    /// rows that are no longer expected (members who left), over all pairs or only `unread_pairs`.
    private func applyExpected(_ c: PostgresConnection, pairsOnly: Bool) throws -> Int {
        let upserted = try c.execute("""
            INSERT INTO chat.unread_counts AS u (conversation_id, user_id, unread, last_message_at, updated_at)
            SELECT conversation_id, user_id, unread, last_message_at, now() FROM pg_temp.unread_expected
            ON CONFLICT (conversation_id, user_id) DO UPDATE
               SET unread = EXCLUDED.unread, last_message_at = EXCLUDED.last_message_at, updated_at = now()
             WHERE u.unread IS DISTINCT FROM EXCLUDED.unread OR u.last_message_at IS DISTINCT FROM EXCLUDED.last_message_at
            """).affectedRows
        let scope = pairsOnly
            ? "AND (u.conversation_id, u.user_id) IN (SELECT conversation_id, user_id FROM pg_temp.unread_pairs)"
            : ""
        let deleted = try c.execute(SQL(unsafeRaw: """
            DELETE FROM chat.unread_counts u
            WHERE NOT EXISTS (SELECT 1 FROM pg_temp.unread_expected e WHERE e.conversation_id = u.conversation_id AND e.user_id = u.user_id)
            \(scope)
            """)).affectedRows
        return upserted + deleted
    }
}
