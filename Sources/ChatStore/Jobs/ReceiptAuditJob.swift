import ChatStorePostgres
import Foundation

/// Audits per-recipient receipts against messages and membership (`Queries/receipt_audit.sql`)
/// and, with `repair`, fixes what can be fixed safely (`Queries/receipt_repair.sql`) in the same
/// transaction, recording every change in `chat.receipt_repairs`.
public struct ReceiptAuditJob: Sendable {
    /// Audit messages sent from this time (default: the last run's watermark minus `lookback`,
    /// or everything on the first run).
    public var from: Date?
    /// ... up to this time (default: now).
    public var to: Date?
    /// Fix the fixable categories.
    public var repair = false
    /// How far before the last watermark a default window starts (late receipts).
    public var lookback: TimeInterval = 2 * 86_400

    public init(repair: Bool = false) { self.repair = repair }

    /// One category's findings.
    public struct Finding: Codable, Sendable {
        public var category: String
        public var found: Int
        public var samples: [String]
        public var repaired: Int
    }

    /// What a run found and changed.
    public struct Report: Codable, Sendable {
        public var from: String
        public var to: String
        public var findings: [Finding]
        public var anomalies: Int { findings.map(\.found).reduce(0, +) }
        public var repaired: Int
        public var receiptsExamined: Int
        public var runID: Int64
        public var seconds: Double
    }

    public func run(_ conn: PostgresConnection, runner: JobRunner) throws -> Report {
        let t0 = Date()
        let (_, report) = try runner.run("receipts", on: conn) { ctx -> JobRunner.Outcome<Report> in
            let c = ctx.connection
            let now = self.to ?? Date()
            let start: Date = self.from
                ?? ctx.previousWatermark.flatMap(PostgresTimestamp.parse).map { $0.addingTimeInterval(-lookback) }
                ?? Date(timeIntervalSince1970: 0)
            let vars: [String: any PostgresEncodable] = ["from": PostgresTimestamp.format(start), "to": PostgresTimestamp.format(now)]
            let audit = try QueryFile.named("receipt_audit.sql").statement(vars)
            var findings = try c.query(audit).map { row in
                Finding(category: try row.decode(String.self, "category"), found: try row.decode(Int.self, "found"),
                        samples: ReceiptAuditJob.parseArray(try row.decode(String.self, "samples")), repaired: 0)
            }
            let examined = try c.scalar(Int.self, """
                SELECT count(*) FROM chat.receipts WHERE sent_at >= \(PostgresTimestamp.format(start))::timestamptz AND sent_at < \(PostgresTimestamp.format(now))::timestamptz
                """)
            var repaired = 0
            if repair {
                var v = vars
                v["run_id"] = String(ctx.runID)
                for stmt in try QueryFile.named("receipt_repair.sql").statements(v) { try c.execute(stmt) }
                let byCategory = try c.query("SELECT category, count(*) AS n FROM chat.receipt_repairs WHERE run_id = \(ctx.runID) GROUP BY category")
                for row in byCategory {
                    let cat = try row.decode(String.self, "category"), n = try row.decode(Int.self, "n")
                    if let i = findings.firstIndex(where: { $0.category == cat }) { findings[i].repaired = n }
                    repaired += n
                }
            }
            let report = Report(from: vars["from"] as! String, to: vars["to"] as! String, findings: findings, repaired: repaired,
                                receiptsExamined: examined, runID: ctx.runID, seconds: Date().timeIntervalSince(t0))
            return JobRunner.Outcome(stats: report, watermark: PostgresTimestamp.format(now))
        }
        return report
    }

    /// Parses a text[] literal of simple elements (`{a,b}`).
    static func parseArray(_ text: String) -> [String] {
        let inner = text.dropFirst().dropLast()
        return inner.isEmpty ? [] : inner.split(separator: ",").map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
    }
}
