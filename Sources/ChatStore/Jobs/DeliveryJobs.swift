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
        /// Pairs still waiting on an attempt scheduled by an earlier run (undelivered, not expired).
        public var waiting: Int
        public var expired: Int
        public var poison: Int
        public var dryRun: Bool
        public var seconds: Double
    }

    public func run(_ conn: PostgresConnection, runner: JobRunner) throws -> Report {
        let t0 = Date()
        let now = self.now ?? Date()
        let citus = try CitusPlan.isAvailable(conn)
        // The candidates, their ANALYZE and the plan (Queries/reconcile.sql).
        let classifyStatements = 3
        // Candidates: receipts sent since the last run, and receipts written since its snapshot
        // whatever their sent_at; the first run reaches back over the whole history.
        func statements(_ c: PostgresConnection, watermark: String?, snapshot: String?) throws -> [SQL] {
            var vars: [String: any PostgresEncodable] = [
                "now": PostgresTimestamp.format(now), "grace": String(grace), "max_age": String(maxAge),
                "max_attempts": String(maxAttempts), "base_seconds": String(baseSeconds),
                "since": "-infinity", "prev": "1:1:", "prev_xmin": String(Int64.max), "first": "true",
                // The newest pending attempt's message: later runs look for deliveries of pending
                // attempts' receipts in the partitions up to it only (a constant bound).
                "pending_until": try c.scalar(String.self, "SELECT coalesce(max(sent_at)::text, '-infinity') FROM chat.delivery_attempts WHERE attempted_at IS NULL"),
            ]
            if let snapshot, let watermark {
                vars["since"] = watermark
                vars["prev"] = snapshot
                vars["prev_xmin"] = String(PGSnapshot.xmin(snapshot))
                vars["first"] = "false"
            }
            var sql = try QueryFile.named("reconcile.sql").statements(vars)
            // On Citus the plan is made by shard-side reads of each table (Citus refuses the
            // LATERAL probes over a temporary table that plain PostgreSQL needs to stay fast).
            if citus { sql[2] = try QueryFile.named("reconcile_plan_citus.sql").statement(vars) }
            return sql
        }
        /// Runs the statements (classification, then the actions) and reports the plan's counts.
        func reconcile(_ c: PostgresConnection, _ statements: [SQL]) throws -> Report {
            // Tracked deliveries are found by their receipts' full keys: index probes into the
            // right partition, never a scan of every receipts partition.
            try c.execute("SET LOCAL enable_hashjoin = off")
            try c.execute("SET LOCAL enable_mergejoin = off")
            for s in statements.prefix(classifyStatements) { try c.execute(s) }
            try c.execute("SET LOCAL enable_hashjoin = on")
            try c.execute("SET LOCAL enable_mergejoin = on")
            var counts: [String: Int] = [:]
            for row in try c.query("SELECT action, count(*) AS n FROM pg_temp.reconcile_plan GROUP BY action") {
                counts[try row.decode(String.self, "action")] = try row.decode(Int.self, "n")
            }
            for s in statements.dropFirst(classifyStatements) { try c.execute(s) }
            // Waiting: the pairs with a pending attempt after the run, less the ones it scheduled
            // (pairs waiting on a pending attempt are not probed each run, so not in the plan).
            let pending = try c.scalar(Int.self, """
                SELECT count(*) FROM (SELECT DISTINCT conversation_id, message_id, recipient_id
                                      FROM chat.delivery_attempts WHERE attempted_at IS NULL) p
                """)
            let scheduled = counts["retry"] ?? 0, expired = counts["expired"] ?? 0, poison = counts["poison"] ?? 0
            let waiting = max(0, pending - scheduled)
            return Report(undelivered: scheduled + waiting + expired + poison, scheduled: scheduled, waiting: waiting,
                          expired: expired, poison: poison, dryRun: dryRun, seconds: 0)
        }
        if dryRun {
            // The whole run, rolled back: the report is the one the run would give.
            let previous = try JobRunner.previousRun("reconcile", on: conn)
            var r = try conn.rolledBack { c in
                try reconcile(c, try statements(c, watermark: previous.watermark, snapshot: previous.snapshot))
            }
            r.seconds = Date().timeIntervalSince(t0)
            return r
        }
        let (_, report) = try runner.run("reconcile", on: conn) { ctx -> JobRunner.Outcome<Report> in
            let sql = try statements(ctx.connection, watermark: ctx.previousWatermark, snapshot: ctx.previousSnapshot)
            var r = try reconcile(ctx.connection, sql)
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
/// `chat.user_last_seen` (`Queries/last_seen.sql`, one whole day at a time), then drops raw
/// presence partitions older than the configured retention once their days are rolled up.
///
/// Which days: with `from`/`to`, those days (a run by hand, which leaves the nightly's starting
/// point alone); otherwise every day touched by a row written since the last run's snapshot
/// (`Queries/last_seen_days.sql`: a message's day, a presence event's day and the next) and every
/// day whose deliveries or reads moved in the receipt cells that changed (`LastSeenCells`: the
/// day an overwritten time left as well as the one it reached); on the first run every day with
/// presence or messages, and the cells are built.
public struct LastSeenJob: Sendable {
    /// First day to roll up (with `to`: a window given by hand).
    public var from: Date?
    /// Day after the last one (default with `from`: tomorrow, so today so far is included).
    public var to: Date?
    public var now: Date?

    public init() {}

    public struct Report: Codable, Sendable {
        /// The first and last day recomputed (empty when none).
        public var from: String
        public var to: String
        public var days: Int
        public var activityRows: Int
        public var lastSeenUpdated: Int
        /// Receipt cells recounted to find the days whose deliveries or reads moved (all of
        /// them on a first run, which builds them; `Migrations/0010_last_seen_cells.sql`).
        public var receiptCells: Int
        public var presencePartitionsDropped: [String]
        public var seconds: Double
    }

    public func run(_ conn: PostgresConnection, runner: JobRunner, partitions: PartitionManager) throws -> Report {
        let t0 = Date()
        let now = self.now ?? Date()
        var report = try runner.run("last-seen", on: conn) { ctx -> JobRunner.Outcome<Report> in
            let c = ctx.connection
            let day = PartitionGranularity.day
            var days: [Date] = []
            var cellsRecounted = 0
            if from != nil || to != nil {
                var d = day.floor(from ?? now)
                let end = to.map { day.floor($0) } ?? day.next(now)
                while d < end { days.append(d); d = day.next(d) }
            } else if ctx.previousSnapshot != nil {
                // Receipts are found by their cells once those are built; the first run after
                // the migration that added them finds them by their rows, then builds the cells.
                let layout = try LastSeenCells.layout(c)
                var vars = ctx.changeVariables
                vars["receipts"] = layout == nil ? "true" : "false"
                var dirty = Set<Date>()
                var candidates: [Date] = []
                for row in try c.query(try QueryFile.named("last_seen_days.sql").statement(vars)) {
                    let d = try row.decode(Date.self, "day")
                    if try row.decode(Bool.self, "forced") { dirty.insert(d) } else { candidates.append(d) }
                }
                if let layout {
                    let moved = try LastSeenCells.update(c, layout: layout, changes: ctx.changeVariables, citus: try CitusPlan.isAvailable(c))
                    dirty.formUnion(moved.days)
                    cellsRecounted = moved.cells
                }
                // The other candidate days (a message's day) are recomputed only if their rollup
                // no longer matches, checked a run of consecutive days per statement.
                let check = try QueryFile.named("last_seen_check.sql")
                for run in LastSeenJob.runs(of: candidates.filter { !dirty.contains($0) }) {
                    let vars = ["lo": PostgresTimestamp.format(run.lowerBound), "hi": PostgresTimestamp.format(day.next(run.upperBound)),
                                "receipts": layout == nil ? "true" : "false"]
                    for row in try c.query(try check.statement(vars)) where !(try row.decode(Bool.self, "unchanged")) {
                        dirty.insert(try row.decode(Date.self, "day"))
                    }
                }
                days = dirty.sorted()
                // Cells the conversation ids outgrew are used once more, then rebuilt wider.
                if try layout.map({ try LastSeenCells.outgrown(c, $0) }) ?? true {
                    cellsRecounted = try LastSeenCells.build(c, partitions: partitions)
                }
            } else {
                let range = try c.queryOne("""
                    SELECT least((SELECT min(occurred_at) FROM chat.presence_events), (SELECT min(sent_at) FROM chat.messages)) AS lo,
                           greatest((SELECT max(occurred_at) FROM chat.presence_events), (SELECT max(sent_at) FROM chat.messages),
                                    -- one pass over the receipts for both times (two were two full scans)
                                    (SELECT max(greatest(read_at, delivered_at)) FROM chat.receipts)) AS hi
                    """)
                if let lo = try range?.decode(Date?.self, "lo"), let hi = try range?.decode(Date?.self, "hi") {
                    var d = day.floor(lo)
                    // A session of the last day can carry into the next one.
                    while d <= day.next(hi) { days.append(d); d = day.next(d) }
                }
                cellsRecounted = try LastSeenCells.build(c, partitions: partitions)
            }
            // Days whose raw presence retention already dropped keep their sessions.
            let presenceFloor = try partitions.partitions(c, parent: "presence_events").map(\.from).min()
            let retention = try c.queryOne("SELECT retention IS NOT NULL AS set FROM chat.partition_config WHERE parent_table = 'presence_events'")?.decode(Bool.self, "set") ?? false
            var activity = 0, lastSeen = 0
            for d in days {
                let keep = retention && (presenceFloor.map { d < $0 } ?? false)
                let statements = try QueryFile.named("last_seen.sql").statements(["day": PostgresTimestamp.format(d), "keep_presence": keep ? "true" : "false"])
                for (i, s) in statements.enumerated() {
                    if i == 3 { activity += try c.executeCountingRows(s) }
                    else if i == statements.count - 1 { lastSeen += try c.executeCountingRows(s) }
                    else { try c.execute(s) }
                }
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
                    dropped.append(p.name)
                }
            }
            let report = Report(from: days.first.map { String(PostgresTimestamp.format($0).prefix(10)) } ?? "",
                                to: days.last.map { String(PostgresTimestamp.format($0).prefix(10)) } ?? "",
                                days: days.count, activityRows: activity, lastSeenUpdated: lastSeen,
                                receiptCells: cellsRecounted, presencePartitionsDropped: dropped, seconds: Date().timeIntervalSince(t0))
            return JobRunner.Outcome(stats: report, watermark: PostgresTimestamp.format(now), recordSnapshot: from == nil && to == nil)
        }.stats
        // The partitions past retention are dropped after the job's transaction, each in its own
        // short one: the exclusive lock on presence_events is then held for milliseconds, and
        // taken in short attempts (ShortLocks), so the application's presence inserts never
        // queue behind a job that still runs.
        var dropped: [String] = []
        for name in report.presencePartitionsDropped {
            try partitions.locks.run("drop \(name)", logger: partitions.logger) {
                try conn.transaction { c in
                    try c.execute("SELECT set_config('lock_timeout', \(String(partitions.locks.lockTimeoutMillis)), true)")
                    guard try c.scalar(Bool.self, "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(\("chat." + name)))") else { return }
                    try c.execute(SQL(unsafeRaw: "ALTER TABLE chat.presence_events DETACH PARTITION chat.\(c.quoteIdentifier(name))"))
                    try c.execute(SQL(unsafeRaw: "DROP TABLE chat.\(c.quoteIdentifier(name))"))
                }
            }
            dropped.append(name)
        }
        report.presencePartitionsDropped = dropped
        return report
    }

    /// Consecutive UTC days (sorted, midnight dates) grouped into closed ranges of days that
    /// follow each other: [d1, d2, d3, d7] → [d1...d3, d7...d7].
    static func runs(of days: [Date]) -> [ClosedRange<Date>] {
        var runs: [ClosedRange<Date>] = []
        for d in days.sorted() {
            if let last = runs.last, PartitionGranularity.day.next(last.upperBound) == d {
                runs[runs.count - 1] = last.lowerBound...d
            } else if runs.last?.contains(d) != true {
                runs.append(d...d)
            }
        }
        return runs
    }
}
