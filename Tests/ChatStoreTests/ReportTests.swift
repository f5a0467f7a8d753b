import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct ReportTests {
    let logger = TestDatabase.logger

    @Test func figuresEqualIndependentSQL() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 150, days: 4)
            let r = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--repair-receipts", "--database-url", settings.conninfo])
            #expect(r.status == 0 || r.status == 2, "\(r.stderr)")
            _ = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--database-url", settings.conninfo])
            let f = try Report(logger: logger).figures(conn, days: 14)
            #expect(f.days.count == 14)
            for d in f.days {
                let counts = try #require(try conn.queryOne("""
                    SELECT count(*) FILTER (WHERE kind = 'text') AS t, count(*) FILTER (WHERE kind = 'media') AS m, count(*) FILTER (WHERE kind = 'system') AS s
                    FROM chat.messages WHERE sent_at::date = \(d.day)::date
                    """))
                let (t, m, sy) = (try counts.decode(Int.self, "t"), try counts.decode(Int.self, "m"), try counts.decode(Int.self, "s"))
                #expect(d.text == t && d.media == m && d.system == sy, "\(d.day)")
                let dau = try conn.scalar(Int.self, "SELECT count(DISTINCT user_id) FROM chat.daily_activity WHERE day = \(d.day)::date")
                #expect(d.activeUsers == dau)
                if d.text + d.media + d.system > 0 {
                    let p50 = try conn.scalar(Double.self, """
                        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - sent_at)) FROM chat.receipts
                        WHERE sent_at::date = \(d.day)::date AND delivered_at >= sent_at
                        """)
                    #expect(abs((d.deliveredP50 ?? -1) - p50) < 1e-6)
                }
            }
            let usersWithUnread = try conn.scalar(Int.self, "SELECT count(*) FROM (SELECT user_id FROM chat.unread_counts GROUP BY 1 HAVING sum(unread) > 0) x")
            #expect(f.unreadDistribution.filter { $0.bucket != "0" }.map(\.users).reduce(0, +) == usersWithUnread)
            #expect(f.unreadDistribution.map(\.users).reduce(0, +) == (try conn.scalar(Int.self, "SELECT count(*) FROM chat.users")))
            let topConv = try conn.scalar(Int.self, "SELECT sum(unread) FROM chat.unread_counts GROUP BY conversation_id ORDER BY 1 DESC LIMIT 1")
            #expect(f.topUnread.first?.unread == topConv)
            #expect(f.auditRuns.count == 2)
            #expect(f.auditRuns[0].anomalies.values.reduce(0, +) > 0 && f.auditRuns[1].anomalies.values.reduce(0, +) == 0)
            #expect(f.repairs.map(\.changes).reduce(0, +) == (try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipt_repairs")))
            let undelivered = try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts WHERE status = 1 AND delivered_at IS NULL AND read_at IS NULL AND sent_at >= \(f.from)::date")
            #expect(f.delivery.map(\.undelivered).reduce(0, +) == undelivered)
            #expect(f.jobRuns.contains { $0.job == "unread" && $0.status == "succeeded" })
            // The page is self-contained: no external scripts, stylesheets, fonts or images.
            let html = Report.html(f)
            #expect(html.contains("<svg") && html.contains("Messages per day by kind"))
            for bad in ["<script", "src=", "href=", "@import", "url("] { #expect(!html.contains(bad), "\(bad)") }
        }
    }

    @Test func anEmptyDatabaseAndAOneDayDatabaseGiveASensiblePage() throws {
        try TestDatabase.migrated { conn, settings in
            let dir = try TestPaths.temporaryDirectory()
            let r = try runCommand(TestPaths.binary, ["report", "--days", "7", "--out", dir + "/empty.html", "--database-url", settings.conninfo])
            #expect(r.status == 0, "\(r.stderr)")
            let html = try String(contentsOfFile: dir + "/empty.html", encoding: .utf8)
            #expect(html.contains("no data for this period"))
            #expect(html.hasSuffix("</html>\n"))
            try TestDatabase.generate(settings, users: 60, days: 1)
            let j = try runCommand(TestPaths.binary, ["report", "--days", "1", "--json", "--database-url", settings.conninfo])
            #expect(j.status == 0)
            #expect(j.stdout.contains("\"unreadDistribution\""))
            let year = try runCommand(TestPaths.binary, ["report", "--days", "365", "--out", dir + "/year.html", "--database-url", settings.conninfo])
            #expect(year.status == 0, "\(year.stderr)")
        }
    }
}
