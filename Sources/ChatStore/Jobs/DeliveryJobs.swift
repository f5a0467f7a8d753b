import ChatStorePostgres
import Foundation

/// Finds messages not delivered after a grace period, schedules redelivery with exponential
/// backoff, and moves (message, recipient) pairs that are too old (`expired`) or keep failing
/// (`poison`) to dead letters (`Queries/reconcile.sql`).
public struct ReconcileJob: Sendable {
    public var now: Date?
    /// Undelivered for less than this is normal, not a problem.
    public var grace: TimeInterval = 600
    /// Older than this, a message is expired rather than retried (Signal keeps queued messages 14 days).
    public var maxAge: TimeInterval = 14 * 86_400
    /// Failed attempts after which a pair is poison.
    public var maxAttempts = 8
    /// Backoff base: attempt n waits base × n⁴ seconds.
    public var baseSeconds: Double = 30
    /// Classify only; change nothing.
    public var dryRun = false

    public init() {}

    public struct Report: Codable, Sendable {
        public var undelivered: Int
        public var scheduled: Int
        public var waiting: Int
        public var expired: Int
        public var poison: Int
        public var dryRun: Bool
        public var seconds: Double
    }

    public func run(_ conn: PostgresConnection, runner: JobRunner) throws -> Report {
        let t0 = Date()
        let now = self.now ?? Date()
        var vars: [String: any PostgresEncodable] = [
            "now": PostgresTimestamp.format(now), "grace": String(grace), "max_age": String(maxAge),
            "max_attempts": String(maxAttempts), "base_seconds": String(baseSeconds),
        ]
        // Receipts sent since the last run are new candidates; the first run looks back max_age + 2 days.
        let last = try conn.queryOne("""
            SELECT watermark FROM chat.job_runs WHERE job = 'reconcile' AND status = 'succeeded' AND watermark IS NOT NULL ORDER BY run_id DESC LIMIT 1
            """)?.decode(String?.self, "watermark").flatMap(PostgresTimestamp.parse)
        let floor = now.addingTimeInterval(-maxAge - 2 * 86_400)
        vars["since"] = PostgresTimestamp.format(max(last ?? floor, floor))
        let statements = try QueryFile.named("reconcile.sql").statements(vars)
        func classify(_ c: PostgresConnection) throws -> Report {
            // Tracked deliveries are found by their receipts' full keys: index probes into the
            // right partition, never a scan of every receipts partition.
            try c.execute("SET LOCAL enable_hashjoin = off")
            try c.execute("SET LOCAL enable_mergejoin = off")
            try c.execute(statements[0])
            try c.execute("SET LOCAL enable_hashjoin = on")
            try c.execute("SET LOCAL enable_mergejoin = on")
            var counts: [String: Int] = [:]
            for row in try c.query("SELECT action, count(*) AS n FROM pg_temp.reconcile_plan GROUP BY action") {
                counts[try row.decode(String.self, "action")] = try row.decode(Int.self, "n")
            }
            return Report(undelivered: counts.values.reduce(0, +), scheduled: counts["retry"] ?? 0, waiting: counts["waiting"] ?? 0,
                          expired: counts["expired"] ?? 0, poison: counts["poison"] ?? 0, dryRun: dryRun, seconds: 0)
        }
        if dryRun {
            var r = try conn.rolledBack(classify)
            r.seconds = Date().timeIntervalSince(t0)
            return r
        }
        let (_, report) = try runner.run("reconcile", on: conn) { ctx -> JobRunner.Outcome<Report> in
            var r = try classify(ctx.connection)
            for s in statements.dropFirst() { try ctx.connection.execute(s) }
            r.seconds = Date().timeIntervalSince(t0)
            return JobRunner.Outcome(stats: r, watermark: PostgresTimestamp.format(now))
        }
        return report
    }
}

/// Moves dead letters back to delivery, oldest first, at most `limit` per run (`Queries/redrive.sql`).
public struct RedriveJob: Sendable {
    public var now: Date?
    /// At most this many dead letters per run: the rate limit.
    public var limit = 1000
    /// Only this reason (`expired` or `poison`), or all.
    public var reason: String?
    public var dryRun = false

    public init() {}

    public struct Report: Codable, Sendable {
        public var redriven: Int
        public var byReason: [String: Int]
        public var remaining: Int
        public var dryRun: Bool
    }

    public func run(_ conn: PostgresConnection, runner: JobRunner) throws -> Report {
        let now = self.now ?? Date()
        let vars: [String: any PostgresEncodable] = ["now": PostgresTimestamp.format(now), "limit": String(limit), "reason": reason ?? ""]
        let statements = try QueryFile.named("redrive.sql").statements(vars)
        func plan(_ c: PostgresConnection) throws -> Report {
            try c.execute(statements[0])
            var by: [String: Int] = [:]
            for row in try c.query("SELECT reason, count(*) AS n FROM pg_temp.redrive_plan GROUP BY reason") {
                by[try row.decode(String.self, "reason")] = try row.decode(Int.self, "n")
            }
            let total = try c.scalar(Int.self, "SELECT count(*) FROM chat.dead_letters WHERE redriven_at IS NULL")
            let n = by.values.reduce(0, +)
            return Report(redriven: n, byReason: by, remaining: total - (dryRun ? 0 : n), dryRun: dryRun)
        }
        if dryRun { return try conn.rolledBack(plan) }
        return try runner.run("redrive", on: conn) { ctx -> JobRunner.Outcome<Report> in
            let r = try plan(ctx.connection)
            for s in statements.dropFirst() { try ctx.connection.execute(s) }
            return JobRunner.Outcome(stats: r)
        }.stats
    }
}

/// Rolls back a dry run's transaction.
struct DryRunRollback: Error {}

extension PostgresConnection {
    /// Runs `body` in a transaction that is always rolled back (dry runs); `body`'s own errors
    /// are rethrown as they are.
    func rolledBack<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        var result: T?
        do {
            try transaction { c -> Void in
                result = try body(c)
                throw DryRunRollback()
            }
        } catch is DryRunRollback {}
        return result!
    }
}

/// Rolls presence and activity up into `chat.daily_activity`, `chat.daily_summary` and
/// `chat.user_last_seen` (`Queries/last_seen.sql`), then drops raw presence partitions older than
/// the configured retention once their days are rolled up.
public struct LastSeenJob: Sendable {
    /// First day to roll up (default: the day before the last run's watermark; on the first run,
    /// the first day with presence or messages).
    public var from: Date?
    /// Day after the last one (default: tomorrow, so today so far is included).
    public var to: Date?
    public var now: Date?

    public init() {}

    public struct Report: Codable, Sendable {
        public var from: String
        public var to: String
        public var days: Int
        public var activityRows: Int
        public var lastSeenUpdated: Int
        public var presencePartitionsDropped: [String]
        public var seconds: Double
    }

    public func run(_ conn: PostgresConnection, runner: JobRunner, partitions: PartitionManager) throws -> Report {
        let t0 = Date()
        let now = self.now ?? Date()
        return try runner.run("last-seen", on: conn) { ctx -> JobRunner.Outcome<Report> in
            let c = ctx.connection
            let day = PartitionGranularity.day
            var start: Date
            if let from { start = day.floor(from) } else if let w = ctx.previousWatermark.flatMap(PostgresTimestamp.parse) {
                start = day.floor(w).addingTimeInterval(-86_400)
            } else {
                let first = try c.queryOne("""
                    SELECT least((SELECT min(occurred_at) FROM chat.presence_events), (SELECT min(sent_at) FROM chat.messages)) AS t
                    """)?.decode(Date?.self, "t")
                start = day.floor(first ?? now)
            }
            let end = to.map { day.floor($0) } ?? day.next(now)
            if start >= end { start = day.floor(end.addingTimeInterval(-86_400)) }
            let vars: [String: any PostgresEncodable] = ["from": PostgresTimestamp.format(start), "to": PostgresTimestamp.format(end)]
            var activity = 0, lastSeen = 0
            let statements = try QueryFile.named("last_seen.sql").statements(vars)
            for (i, s) in statements.enumerated() {
                let n = try c.execute(s).affectedRows
                if i == 1 { activity = n }
                if i == statements.count - 1 { lastSeen = n }
            }
            // Retention of raw presence: drop whole partitions that ended before now - retention
            // and whose days are rolled up.
            var dropped: [String] = []
            if let retention = try c.queryOne("SELECT extract(epoch FROM retention)::float8 AS s FROM chat.partition_config WHERE parent_table = 'presence_events'")?.decode(Double?.self, "s") {
                let cutoff = now.addingTimeInterval(-retention)
                for p in try partitions.partitions(c, parent: "presence_events") where p.to <= cutoff {
                    let rolled = try c.scalar(Int.self, """
                        SELECT count(*) FROM chat.daily_summary WHERE day >= \(PostgresTimestamp.format(p.from))::date AND day < \(PostgresTimestamp.format(p.to))::date
                        """)
                    let hasRows = try c.scalar(Bool.self, SQL(unsafeRaw: "SELECT EXISTS (SELECT 1 FROM chat.\(c.quoteIdentifier(p.name)))"))
                    guard rolled > 0 || !hasRows else { continue }
                    try c.execute(SQL(unsafeRaw: "SELECT set_config('lock_timeout', '3000', true)"))
                    try c.execute(SQL(unsafeRaw: "ALTER TABLE chat.presence_events DETACH PARTITION chat.\(c.quoteIdentifier(p.name))"))
                    try c.execute(SQL(unsafeRaw: "DROP TABLE chat.\(c.quoteIdentifier(p.name))"))
                    dropped.append(p.name)
                }
            }
            let report = Report(from: vars["from"] as! String, to: vars["to"] as! String,
                                days: Int(end.timeIntervalSince(start) / 86_400), activityRows: activity, lastSeenUpdated: lastSeen,
                                presencePartitionsDropped: dropped, seconds: Date().timeIntervalSince(t0))
            return JobRunner.Outcome(stats: report, watermark: PostgresTimestamp.format(now))
        }.stats
    }
}
