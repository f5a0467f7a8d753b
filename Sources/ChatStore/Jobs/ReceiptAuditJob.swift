import ChatStorePostgres
import Foundation

/// Audits per-recipient receipts against messages and membership (`Queries/receipt_audit.sql`)
/// and, with `repair`, fixes what can be fixed safely (`Queries/receipt_repair.sql`) in the same
/// transaction, recording every change in `chat.receipt_repairs`.
///
/// Which messages: by default every message touched by a row written since the last nightly
/// audit's snapshot (`Queries/receipt_audit_changes.sql`: in commit order, whatever the rows'
/// timestamps), and on the first run the whole history. With `from`/`to`, the messages sent in
/// that window; such a run leaves the nightly's starting point where it was. What an audit finds
/// replaces what `chat.receipt_anomalies` knew of those messages, so that table holds every open
/// anomaly; `repair` works from it, so it repairs what earlier audits reported, however old.
public struct ReceiptAuditJob: Sendable {
    /// Audit messages sent from this time (a window given by hand).
    public var from: Date?
    /// ... up to this time (default with `from`: now).
    public var to: Date?
    /// Fix the fixable categories.
    public var repair = false
    /// Opens a second connection for a first run or a window (nil: one connection). The day
    /// chunks are then split between the job's connection and this one, which imports the job's
    /// snapshot (`pg_export_snapshot`), so both read the same rows; what it finds is copied into
    /// the job's transaction before anything is applied. Not used on Citus, nor for the nightly's
    /// changes (a night's scope is small).
    public var helper: (@Sendable () throws -> PostgresConnection)?

    public init(repair: Bool = false) { self.repair = repair }

    /// Every category, in report order.
    public static let categories = [
        "delivered_before_sent", "duplicate_receipt", "missing_receipt", "non_member_receipt", "orphan_receipt",
        "read_before_delivered", "read_before_sent", "read_without_delivered", "sender_receipt",
        "status_ahead_of_times", "status_behind_times",
    ]

    /// One category's findings.
    public struct Finding: Codable, Sendable {
        public var category: String
        /// Receipt rows (or missing receipts) found in the messages this run looked at.
        public var found: Int
        /// Up to 5 of them, as conversation_id:message_id:recipient_id.
        public var samples: [String]
        /// Rows this run repaired.
        public var repaired: Int
        /// Anomalies of the category still open anywhere after this run (`chat.receipt_anomalies`).
        public var open: Int
    }

    /// What a run found and changed.
    public struct Report: Codable, Sendable {
        /// The window given by hand, or "changes" for a nightly run, or "all" for a first run.
        public var scope: String
        public var findings: [Finding]
        public var anomalies: Int { findings.map(\.found).reduce(0, +) }
        public var open: Int { findings.map(\.open).reduce(0, +) }
        public var repaired: Int
        public var messagesExamined: Int
        public var runID: Int64
        public var seconds: Double
        /// The connections the audit ran on (2 when a helper took half of the days).
        public var connections = 1
    }

    public func run(_ conn: PostgresConnection, runner: JobRunner) throws -> Report {
        let t0 = Date()
        let manual = from != nil || to != nil
        let (_, report) = try runner.run("receipts", on: conn) { ctx -> JobRunner.Outcome<Report> in
            let c = ctx.connection
            // Citus cannot push down a LATERAL ... OFFSET 0 probe over a temporary table: there,
            // every chunk takes the hash path (which it runs on the shards).
            let citus = try CitusPlan.isAvailable(c)
            // The window given by hand (else everything): the first run's scope and the repair's.
            let toDate = to ?? (manual ? Date() : nil)
            let windowFrom = from.map(PostgresTimestamp.format) ?? "-infinity"
            let windowTo = toDate.map(PostgresTimestamp.format) ?? "infinity"
            let window: [String: any PostgresEncodable] = ["from": windowFrom, "to": windowTo]
            let scope: String
            // A window on PostgreSQL reads each day's messages straight from chat.messages (no
            // scope table: Queries/receipt_audit.sql, :'windowed'); Citus, and the nightly's
            // changes, audit a scope table.
            let windowed = (manual || ctx.previousSnapshot == nil) && !citus
            var windowChunks: [PostgresConnection.DayChunk] = []
            if manual || ctx.previousSnapshot == nil {
                scope = manual ? "[\(window["from"]!), \(window["to"]!))" : "all"
                if windowed {
                    try c.execute("CREATE TEMP TABLE audit_scope (conversation_id bigint, message_id bigint, sent_at timestamptz, sender_id bigint) ON COMMIT DROP")
                    windowChunks = try c.windowDayChunks(from: from, to: toDate)
                } else {
                    try c.execute(try QueryFile.named("receipt_audit_window.sql").statement(window))
                }
            } else {
                scope = "changes"
                try c.execute(try QueryFile.named("receipt_audit_changes.sql").statement(ctx.changeVariables))
            }
            try c.execute("ANALYZE pg_temp.audit_scope")
            let examined = windowed ? windowChunks.map(\.rows).reduce(0, +) : try c.scalar(Int.self, "SELECT count(*) FROM pg_temp.audit_scope")
            // The audit goes a day of the scope at a time (each day reads three receipts partitions).
            var connections = 1
            var repeated = false   // the second audit, of the repaired messages (its scope is theirs)
            func audit() throws {
                try c.execute("""
                    CREATE TEMP TABLE audit_found (category text, conversation_id bigint, message_id bigint, recipient_id bigint, sent_at timestamptz)
                    ON COMMIT DROP
                    """)
                // (The second audit, of the repaired messages, has them in a scope table.)
                let fromWindow = windowed && !repeated
                let chunks = fromWindow ? windowChunks : try c.dayChunks(of: "pg_temp.audit_scope", probing: !citus)
                connections = try ReceiptAuditJob.auditChunks(chunks, on: c, helper: fromWindow ? helper : nil, runner: runner,
                                                              windowed: fromWindow, citus: citus, logger: ctx.logger)
                if fromWindow {
                    // The messages with a receipt filed on a neighbouring day, audited again with
                    // the days either side (Queries/receipt_audit_orphans.sql).
                    for s in try QueryFile.named("receipt_audit_orphans.sql").statements(window) { try c.execute(s) }
                    try c.execute("ANALYZE pg_temp.audit_scope")
                    try ReceiptAuditJob.auditChunks(try c.dayChunks(of: "pg_temp.audit_scope", probing: true), on: c, helper: nil,
                                                    runner: runner, windowed: false, citus: citus, logger: ctx.logger)
                }
                try c.execute("ANALYZE pg_temp.audit_found")
                try c.execute(fromWindow ? try QueryFile.named("receipt_audit_known_window.sql").statement(window)
                                         : try QueryFile.named("receipt_audit_known.sql").statement([:]))
                for s in try QueryFile.named("receipt_audit_apply.sql").statements(["run_id": String(ctx.runID)]) { try c.execute(s) }
            }
            try audit()
            var found: [String: (Int, [String])] = [:]
            for row in try c.query("""
                SELECT category, count(*) AS n,
                       (array_agg(DISTINCT conversation_id || ':' || message_id || ':' || recipient_id))[1:5] AS samples
                FROM pg_temp.audit_found GROUP BY category
                """) {
                found[try row.decode(String.self, "category")] = (try row.decode(Int.self, "n"), ReceiptAuditJob.parseArray(try row.decode(String.self, "samples")))
            }
            var repairedBy: [String: Int] = [:]
            if repair {
                // What the audits reported (within the window, when one is given), however old.
                try c.execute(try QueryFile.named("receipt_repair_scope.sql").statement(window))
                try c.execute("ANALYZE pg_temp.repair_scope")
                let repairSQL = try QueryFile.named("receipt_repair.sql")
                let xid = try c.scalar(Int64.self, "SELECT pg_current_xact_id()::text::bigint")
                for d in try c.dayChunks(of: "pg_temp.repair_scope") {
                    for s in try repairSQL.statements(["run_id": String(ctx.runID), "xid": String(xid), "lo": d.lo, "hi": d.hi]) { try c.execute(s) }
                }
                for row in try c.query("SELECT category, count(*) AS n FROM chat.receipt_repairs WHERE run_id = \(ctx.runID) GROUP BY category") {
                    repairedBy[try row.decode(String.self, "category")] = try row.decode(Int.self, "n")
                }
                // Audit the repaired messages again, so the open anomalies are what is left.
                try c.execute("DROP TABLE pg_temp.audit_scope, pg_temp.audit_found, pg_temp.audit_known")
                try c.execute("""
                    CREATE TEMP TABLE audit_scope ON COMMIT DROP AS
                    SELECT s.conversation_id, s.message_id, s.sent_at, m.sender_id FROM pg_temp.repair_scope s
                    LEFT JOIN chat.messages m ON m.conversation_id = s.conversation_id AND m.message_id = s.message_id AND m.sent_at = s.sent_at
                    """)
                try c.execute("ANALYZE pg_temp.audit_scope")
                repeated = true
                try audit()
            }
            var open: [String: Int] = [:]
            for row in try c.query("SELECT category, sum(row_count)::bigint AS n FROM chat.receipt_anomalies GROUP BY category") {
                open[try row.decode(String.self, "category")] = try row.decode(Int.self, "n")
            }
            let findings = ReceiptAuditJob.categories.map {
                Finding(category: $0, found: found[$0]?.0 ?? 0, samples: found[$0]?.1 ?? [], repaired: repairedBy[$0] ?? 0, open: open[$0] ?? 0)
            }
            let report = Report(scope: scope, findings: findings, repaired: repairedBy.values.reduce(0, +),
                                messagesExamined: examined, runID: ctx.runID, seconds: Date().timeIntervalSince(t0), connections: connections)
            return JobRunner.Outcome(stats: report, watermark: PostgresTimestamp.format(Date()), recordSnapshot: !manual)
        }
        return report
    }

    /// Parses a text[] literal of simple elements (`{a,b}`).
    static func parseArray(_ text: String) -> [String] {
        let inner = text.dropFirst().dropLast()
        return inner.isEmpty ? [] : inner.split(separator: ",").map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
    }
}
