import ChatStorePostgres
import Foundation
import Logging

/// The operator's report: what the nightly jobs found, as figures (for `--json`) and as one
/// self-contained HTML page with inline SVG charts and the numbers in tables.
public struct Report {
    public struct Day: Codable, Sendable {
        public var day: String
        public var text: Int, media: Int, system: Int
        public var newConversations: Int
        public var activeUsers: Int
        public var deliveredP50: Double?, deliveredP90: Double?, deliveredP99: Double?
        public var readP50: Double?, readP90: Double?, readP99: Double?
    }
    public struct Bucket: Codable, Sendable { public var bucket: String; public var users: Int }
    public struct TopConversation: Codable, Sendable { public var conversationId: Int64; public var kind: String; public var title: String; public var unread: Int; public var membersWithUnread: Int }
    public struct AuditRun: Codable, Sendable { public var runId: Int64; public var startedAt: String; public var anomalies: [String: Int]; public var repaired: Int }
    public struct Repair: Codable, Sendable { public var runId: Int64; public var category: String; public var action: String; public var changes: Int }
    public struct DeliveryDay: Codable, Sendable { public var day: String; public var undelivered: Int; public var attempts: Int; public var expired: Int; public var poison: Int }
    public struct JobRun: Codable, Sendable { public var runId: Int64; public var job: String; public var startedAt: String; public var seconds: Double?; public var status: String }
    public struct PartitionSize: Codable, Sendable { public var table: String; public var partition: String; public var from: String; public var bytes: Int64 }
    public struct ArchiveRow: Codable, Sendable { public var partition: String; public var rows: Int64; public var bytes: Int64; public var verified: Bool; public var dropped: Bool }

    public struct Figures: Codable, Sendable {
        public var from: String
        public var to: String
        public var generatedAt: String
        public var days: [Day]
        public var unreadDistribution: [Bucket]
        public var topUnread: [TopConversation]
        public var auditRuns: [AuditRun]
        public var repairs: [Repair]
        public var delivery: [DeliveryDay]
        public var partitions: [PartitionSize]
        public var intervalsAhead: [String: Int]
        public var rowsInDefault: [String: Int]
        public var archives: [ArchiveRow]
        public var jobRuns: [JobRun]
    }

    public let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// Reads the figures for the `days` days up to today (UTC).
    /// The query file of step `i`, reported as progress (`report: report_daily`).
    private func reportStep(_ i: Int, of total: Int, _ name: String) -> String {
        Progress.report("report: \(name)", done: Int64(i), total: Int64(total), unit: "queries")
        return name + ".sql"
    }

    public func figures(_ conn: PostgresConnection, days: Int, now: Date = Date()) throws -> Figures {
        let dayG = PartitionGranularity.day
        let to = dayG.next(now), from = to.addingTimeInterval(-Double(days) * 86_400)
        let vars: [String: any PostgresEncodable] = ["from": String(PostgresTimestamp.format(from).prefix(10)), "to": String(PostgresTimestamp.format(to).prefix(10))]
        // The per-day figures one day per statement (Queries/report_daily.sql, report_delivery.sql):
        // each reads one day's partitions, so memory and temporary files do not grow with `days`.
        let steps = 2 * days + 4
        var dayRows: [Day] = [], delivery: [DeliveryDay] = []
        for i in 0..<days {
            let day: [String: any PostgresEncodable] = ["day": String(PostgresTimestamp.format(from.addingTimeInterval(Double(i) * 86_400)).prefix(10))]
            dayRows += try conn.query(try QueryFile.named(reportStep(2 * i, of: steps, "report_daily")).statement(day)).map { r in
                Day(day: try r.decode(String.self, "day"), text: try r.decode(Int.self, "text"), media: try r.decode(Int.self, "media"),
                    system: try r.decode(Int.self, "system"), newConversations: try r.decode(Int.self, "new_conversations"),
                    activeUsers: try r.decode(Int.self, "active_users"),
                    deliveredP50: try r.decode(Double?.self, "delivered_p50"), deliveredP90: try r.decode(Double?.self, "delivered_p90"),
                    deliveredP99: try r.decode(Double?.self, "delivered_p99"), readP50: try r.decode(Double?.self, "read_p50"),
                    readP90: try r.decode(Double?.self, "read_p90"), readP99: try r.decode(Double?.self, "read_p99"))
            }
            delivery += try conn.query(try QueryFile.named(reportStep(2 * i + 1, of: steps, "report_delivery")).statement(day)).map {
                DeliveryDay(day: try $0.decode(String.self, "day"), undelivered: try $0.decode(Int.self, "undelivered"), attempts: try $0.decode(Int.self, "attempts"),
                            expired: try $0.decode(Int.self, "expired"), poison: try $0.decode(Int.self, "poison"))
            }
        }
        let buckets = try conn.query(try QueryFile.named(reportStep(2 * days, of: steps, "report_unread")).statement()).map { Bucket(bucket: try $0.decode(String.self, "bucket"), users: try $0.decode(Int.self, "users")) }
        let top = try conn.query(try QueryFile.named(reportStep(2 * days + 1, of: steps, "report_top_unread")).statement()).map {
            TopConversation(conversationId: try $0.decode(Int64.self, "conversation_id"), kind: try $0.decode(String.self, "kind"), title: try $0.decode(String.self, "title"),
                            unread: try $0.decode(Int.self, "unread"), membersWithUnread: try $0.decode(Int.self, "members_with_unread"))
        }
        var audits: [AuditRun] = [], runs: [JobRun] = []
        for r in try conn.query(try QueryFile.named(reportStep(2 * days + 2, of: steps, "report_runs")).statement(vars)) {
            let job = try r.decode(String.self, "job")
            let run = JobRun(runId: try r.decode(Int64.self, "run_id"), job: job, startedAt: PostgresTimestamp.iso8601(try r.decode(Date.self, "started_at")),
                             seconds: try r.decode(Double?.self, "seconds"), status: try r.decode(String.self, "status"))
            runs.append(run)
            if job == "receipts", run.status == "succeeded",
               let stats = try JSONSerialization.jsonObject(with: Data(try r.decode(String.self, "stats").utf8)) as? [String: Any] {
                var a: [String: Int] = [:]
                for f in stats["findings"] as? [[String: Any]] ?? [] {
                    if let c = f["category"] as? String, let n = f["found"] as? Int { a[c] = n }
                }
                audits.append(AuditRun(runId: run.runId, startedAt: run.startedAt, anomalies: a, repaired: stats["repaired"] as? Int ?? 0))
            }
        }
        let repairs = try conn.query(try QueryFile.named(reportStep(2 * days + 3, of: steps, "report_repairs")).statement()).map {
            Repair(runId: try $0.decode(Int64.self, "run_id"), category: try $0.decode(String.self, "category"), action: try $0.decode(String.self, "action"), changes: try $0.decode(Int.self, "changes"))
        }
        let pm = PartitionManager(logger: logger)
        let st = try pm.status(conn, now: now)
        var parts: [PartitionSize] = []
        for t in st.tables { for p in t.partitions where p.from >= from && p.from < to { parts.append(PartitionSize(table: t.table, partition: p.name, from: String(PostgresTimestamp.format(p.from).prefix(10)), bytes: p.bytes)) } }
        let archives = try conn.query("SELECT partition_name, row_count, bytes, verified_at IS NOT NULL AS v, dropped_at IS NOT NULL AS d FROM chat.archives ORDER BY range_start").map {
            ArchiveRow(partition: try $0.decode(String.self, "partition_name"), rows: try $0.decode(Int64.self, "row_count"), bytes: try $0.decode(Int64.self, "bytes"),
                       verified: try $0.decode(Bool.self, "v"), dropped: try $0.decode(Bool.self, "d"))
        }
        return Figures(from: vars["from"] as! String, to: vars["to"] as! String, generatedAt: PostgresTimestamp.format(now), days: dayRows,
                       unreadDistribution: buckets, topUnread: top, auditRuns: audits, repairs: repairs, delivery: delivery, partitions: parts,
                       intervalsAhead: Dictionary(uniqueKeysWithValues: st.tables.map { ($0.table, $0.intervalsAhead) }),
                       rowsInDefault: Dictionary(uniqueKeysWithValues: st.tables.map { ($0.table, $0.rowsInDefault) }), archives: archives, jobRuns: runs)
    }

    /// The self-contained HTML page (no external scripts, fonts or images).
    public static func html(_ f: Figures) -> String {
        let e = SVGChart.esc
        let x = f.days.map { String($0.day.dropFirst(5)) }
        let c = SVGChart.palette
        func table(_ head: [String], _ rows: [[String]]) -> String {
            "<table><thead><tr>" + head.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead><tbody>"
                + (rows.isEmpty ? "<tr><td colspan=\"\(head.count)\">none</td></tr>" : rows.map { "<tr>" + $0.map { "<td>\(e($0))</td>" }.joined() + "</tr>" }.joined())
                + "</tbody></table>"
        }
        func num(_ v: Double?) -> String { v.map { SVGChart.compact($0) } ?? "–" }
        var body = "<h1>chatstore report</h1><p class=\"meta\">\(e(f.from)) to \(e(f.to)) (exclusive), generated \(e(f.generatedAt))</p>"
        body += "<h2>Traffic</h2>"
        body += SVGChart.chart(title: "Messages per day by kind", yLabel: "messages", xLabel: "day (UTC)", x: x, series: [
            .init(name: "text", values: f.days.map { Double($0.text) }, color: c[0]),
            .init(name: "media", values: f.days.map { Double($0.media) }, color: c[1]),
            .init(name: "system", values: f.days.map { Double($0.system) }, color: c[2])], stacked: true)
        body += SVGChart.chart(title: "Daily active users and new conversations", yLabel: "count", xLabel: "day (UTC)", x: x, series: [
            .init(name: "daily active users", values: f.days.map { Double($0.activeUsers) }, color: c[0]),
            .init(name: "new conversations", values: f.days.map { Double($0.newConversations) }, color: c[3])])
        body += table(["day", "text", "media", "system", "new conversations", "daily active users"],
                      f.days.map { [$0.day, String($0.text), String($0.media), String($0.system), String($0.newConversations), String($0.activeUsers)] })
        body += "<h2>Latency</h2>"
        body += SVGChart.chart(title: "Send to delivered, percentiles", yLabel: "seconds", xLabel: "day the message was sent (UTC)", x: x, series: [
            .init(name: "p50", values: f.days.map(\.deliveredP50), color: c[0]), .init(name: "p90", values: f.days.map(\.deliveredP90), color: c[1]),
            .init(name: "p99", values: f.days.map(\.deliveredP99), color: c[3])], logScale: true)
        body += SVGChart.chart(title: "Delivered to read, percentiles", yLabel: "seconds", xLabel: "day the message was sent (UTC)", x: x, series: [
            .init(name: "p50", values: f.days.map(\.readP50), color: c[0]), .init(name: "p90", values: f.days.map(\.readP90), color: c[1]),
            .init(name: "p99", values: f.days.map(\.readP99), color: c[3])], logScale: true)
        body += table(["day", "delivered p50 s", "p90 s", "p99 s", "read p50 s", "p90 s", "p99 s"],
                      f.days.map { [$0.day, num($0.deliveredP50), num($0.deliveredP90), num($0.deliveredP99), num($0.readP50), num($0.readP90), num($0.readP99)] })
        body += "<h2>Unread</h2>"
        body += SVGChart.chart(title: "Users by total unread messages", yLabel: "users", xLabel: "unread messages per user", x: f.unreadDistribution.map(\.bucket),
                               series: [.init(name: "users", values: f.unreadDistribution.map { Double($0.users) }, color: c[4])], stacked: true)
        body += table(["unread per user", "users"], f.unreadDistribution.map { [$0.bucket, String($0.users)] })
        body += table(["conversation", "kind", "title", "unread (all members)", "members with unread"],
                      f.topUnread.map { [String($0.conversationId), $0.kind, $0.title, String($0.unread), String($0.membersWithUnread)] })
        body += "<h2>Receipt audit</h2>"
        let cats = Array(Set(f.auditRuns.flatMap { $0.anomalies.keys })).sorted()
        body += SVGChart.chart(title: "Anomalies found per audit run", yLabel: "receipts", xLabel: "audit run", x: f.auditRuns.map { "#\($0.runId)" },
                               series: cats.enumerated().map { i, cat in .init(name: cat, values: f.auditRuns.map { Double($0.anomalies[cat] ?? 0) }, color: c[i % c.count]) }, stacked: true)
        body += table(["run", "started"] + cats + ["repaired"], f.auditRuns.map { r in ["#\(r.runId)", r.startedAt] + cats.map { String(r.anomalies[$0] ?? 0) } + [String(r.repaired)] })
        body += table(["repair run", "category", "action", "changes"], f.repairs.map { ["#\($0.runId)", $0.category, $0.action, String($0.changes)] })
        body += "<h2>Delivery</h2>"
        body += SVGChart.chart(title: "Undelivered, retries and dead letters", yLabel: "receipts", xLabel: "day (UTC)", x: x, series: [
            .init(name: "undelivered (by send day)", values: f.delivery.map { Double($0.undelivered) }, color: c[0]),
            .init(name: "retries scheduled", values: f.delivery.map { Double($0.attempts) }, color: c[1]),
            .init(name: "dead: expired", values: f.delivery.map { Double($0.expired) }, color: c[7]),
            .init(name: "dead: keeps failing", values: f.delivery.map { Double($0.poison) }, color: c[3])])
        body += table(["day", "undelivered", "retries scheduled", "dead letters: expired", "dead letters: keeps failing"],
                      f.delivery.map { [$0.day, String($0.undelivered), String($0.attempts), String($0.expired), String($0.poison)] })
        body += "<h2>Partitions</h2>"
        let tables = ["messages", "receipts", "presence_events"]
        let pdays = Array(Set(f.partitions.map(\.from))).sorted()
        body += SVGChart.chart(title: "Partition size per day", yLabel: "MiB", xLabel: "partition start (UTC)", x: pdays.map { String($0.dropFirst(5)) },
                               series: tables.enumerated().map { i, t in .init(name: t, values: pdays.map { d in f.partitions.first { $0.table == t && $0.from == d }.map { Double($0.bytes) / 1_048_576 } }, color: c[i]) }, stacked: true)
        body += table(["table", "intervals premade ahead", "rows in default partition"], tables.map { [$0, String(f.intervalsAhead[$0] ?? 0), String(f.rowsInDefault[$0] ?? 0)] })
        body += table(["archived partition", "rows", "bytes", "verified", "dropped"], f.archives.map { [$0.partition, String($0.rows), String($0.bytes), $0.verified ? "yes" : "no", $0.dropped ? "yes" : "no"] })
        body += "<h2>Jobs</h2>"
        let jobs = Array(Set(f.jobRuns.map(\.job))).sorted()
        let runDays = Array(Set(f.jobRuns.map { String($0.startedAt.prefix(16)) })).sorted()
        body += SVGChart.chart(title: "Job duration per run", yLabel: "seconds", xLabel: "run start (UTC)", x: runDays.map { String($0.dropFirst(5)) },
                               series: jobs.enumerated().map { i, j in .init(name: j, values: runDays.map { d in f.jobRuns.last { $0.job == j && $0.startedAt.hasPrefix(d) }?.seconds }, color: c[i % c.count]) })
        body += table(["run", "job", "started", "seconds", "status"], f.jobRuns.suffix(60).map { ["#\($0.runId)", $0.job, $0.startedAt, num($0.seconds), $0.status] })
        let style = """
            body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:960px;color:#222}
            h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}.meta{color:#666}
            svg{width:100%;height:auto;margin:8px 0}svg .title{font-size:15px;font-weight:600}svg .tick{font-size:11px;fill:#444}
            svg .label{font-size:12px;fill:#222}svg .grid{stroke:#eee}svg .axis{stroke:#888}svg .empty{font-size:14px;fill:#999}
            table{border-collapse:collapse;margin:8px 0 16px;font-size:12px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f5f5f5}
            """
        return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>chatstore report \(e(f.from)) to \(e(f.to))</title><style>\(style)</style></head><body>\(body)</body></html>\n"
    }
}
