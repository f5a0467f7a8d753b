import ChatStorePostgres
import ChatStoreZstd
import Foundation
import Logging

/// The nightly run: partition upkeep, reconcile, receipt audit, unread counts, last-seen, in that
/// order, each in its own transaction, then a summary. A failing job does not stop the others;
/// the summary says which failed.
public struct Nightly: Sendable {
    public let logger: Logger
    public var runner: JobRunner
    public var repairReceipts = false
    public var now: Date?
    /// Where retention archives go. Retention runs only when `chat.partition_config.retention` is
    /// set for messages and this is given: nothing is dropped without an archive.
    public var archiveDirectory: String?
    /// Seconds between full unread recomputes with repair (default a week).
    public var fullRepairEvery: Double = 7 * 86_400
    /// How many of reconcile, the receipt audit, unread and last-seen run at once, each on its own
    /// connection (opened with `connectionSettings`); 1 (the default) runs them one after
    /// another. Partition upkeep runs before them and retention after them, alone.
    public var parallelJobs = 1
    /// Where the further connections of `parallelJobs` go (the same server and role as the run's).
    public var connectionSettings: ConnectionSettings?

    public init(logger: Logger) {
        self.logger = logger
        runner = JobRunner(logger: logger)
    }

    /// One job's line in the summary.
    public struct JobSummary: Codable, Sendable {
        public var job: String
        public var status: String          // succeeded, failed, busy
        public var seconds: Double
        public var examined: Int
        public var changed: Int
        public var anomalies: [String: Int]
        public var error: String?
    }

    public struct Summary: Codable, Sendable {
        public var startedAt: Date
        public var jobs: [JobSummary]
        public var anomalies: Int { jobs.flatMap { $0.anomalies.values }.reduce(0, +) }
        public var failed: Bool { jobs.contains { $0.status != "succeeded" } }
        public var partitionWarnings: [String]
        /// The sum of unread counts; nil when the unread job did not succeed (no value is made up).
        public var unreadTotal: Int?
        public var deadLetters: [String: Int]
        /// When each job last succeeded (nightly or on its own), from `chat.job_runs`.
        public var lastSuccess: [String: Date] = [:]
        public var partitionsAhead: [String: Int]
        public var rowsInDefault: [String: Int]
        public var seconds: Double
    }

    public func run(_ conn: PostgresConnection, progress: (@Sendable (String) -> Void)? = nil) throws -> Summary {
        let t0 = Date()
        let key = JobRunner.lockKey("nightly")
        try JobRunner.acquire(key, job: "nightly", on: conn, waiting: runner.lockWait)
        defer { _ = try? conn.advisoryUnlock(key) }
        var jobs: [JobSummary] = []
        let total: Int64 = archiveDirectory == nil ? 5 : 6
        func step(_ name: String, _ body: () throws -> JobSummary) {
            progress?(name)
            Progress.report("nightly: \(name)", done: Int64(jobs.count), total: total, unit: "jobs")
            jobs.append(Nightly.perform(name, logger: logger, body))
        }
        let pm = PartitionManager(logger: logger)
        var warnings: [String] = []
        step("partitions") {
            let r = try pm.ensure(conn, now: now ?? Date())
            warnings = r.status.warnings
            let inDefault = r.status.tables.map(\.rowsInDefault).reduce(0, +)
            return JobSummary(job: "partitions", status: "succeeded", seconds: 0, examined: r.status.tables.map(\.partitions.count).reduce(0, +),
                              changed: r.created.count, anomalies: inDefault > 0 ? ["rows_in_default_partition": inDefault] : [:])
        }
        // Reconcile, the audit, unread and last-seen: one after another, or `parallelJobs` at a
        // time (JobLanes). Repairs change the receipts the others read, so with
        // `repairReceipts` they wait for the audit.
        let results = Results()
        let order = ["reconcile", "receipts", "unread", "last-seen"]
        let afterRepair: Set<String> = repairReceipts ? ["receipts"] : []
        let me = self
        // Each further connection (a lane's, the audit's helper): the same server and role.
        let connect = connectionSettings.map { s in { @Sendable in try PostgresConnection(settings: s, logger: me.logger) } }
        func job(_ name: String, _ body: @escaping @Sendable (PostgresConnection) throws -> JobSummary) -> JobLanes.Job {
            JobLanes.Job(name: name, after: name == "receipts" ? [] : afterRepair) { c in
                progress?(name)
                Progress.report("nightly: \(name)", done: Int64(1 + results.count), total: total, unit: "jobs")
                results.set(name, Nightly.perform(name, logger: me.logger) { try body(c) })
            }
        }
        var middle = [
            job("reconcile") { c in
                var j = ReconcileJob(); j.now = me.now
                let r = try j.run(c, runner: me.runner)
                return JobSummary(job: "reconcile", status: "succeeded", seconds: 0, examined: r.undelivered,
                                  changed: r.scheduled + r.expired + r.poison, anomalies: [:])
            },
            job("receipts") { c in
                var j = ReceiptAuditJob(repair: me.repairReceipts)
                // A first run (the whole history) splits its days over a second connection.
                if me.parallelJobs > 1 { j.helper = connect }
                let r = try j.run(c, runner: me.runner)
                var a: [String: Int] = [:]
                for f in r.findings where f.found > 0 { a[f.category] = f.found }
                return JobSummary(job: "receipts", status: "succeeded", seconds: 0, examined: r.messagesExamined, changed: r.repaired, anomalies: a)
            },
            job("unread") { c in
                // Incremental every night; a full recompute with repair when none ran in the last
                // `fullRepairEvery`, a safety net for changes made without updating updated_at.
                let recent = try c.scalar(Bool.self, """
                    SELECT EXISTS (SELECT 1 FROM chat.job_runs WHERE job = 'unread' AND status = 'succeeded'
                                   AND stats->>'mode' IN ('full', 'repair') AND started_at > now() - make_interval(secs => \(me.fullRepairEvery)))
                    """)
                let ever = try c.scalar(Bool.self, "SELECT EXISTS (SELECT 1 FROM chat.job_runs WHERE job = 'unread' AND status = 'succeeded')")
                var j = UnreadJob(mode: !ever ? .full : recent ? .incremental : .repair); j.now = me.now
                let r = try j.run(c, runner: me.runner)
                results.setUnreadTotal(r.totalUnread)
                return JobSummary(job: "unread", status: "succeeded", seconds: 0, examined: r.pairsWithUnread, changed: r.rowsChanged,
                                  anomalies: r.driftCount > 0 ? ["unread_drift_repaired": r.driftCount] : [:])
            },
            job("last-seen") { c in
                var j = LastSeenJob(); j.now = me.now
                let r = try j.run(c, runner: me.runner, partitions: pm)
                return JobSummary(job: "last-seen", status: "succeeded", seconds: 0, examined: r.days, changed: r.activityRows + r.lastSeenUpdated, anomalies: [:])
            },
        ]
        if parallelJobs > 1 {
            // The longest first, so that the others fill the other lane: the audit is the
            // longest job of a night (and of a first run over a long history), then unread.
            let first = ["receipts", "unread", "last-seen", "reconcile"]
            middle.sort { first.firstIndex(of: $0.name)! < first.firstIndex(of: $1.name)! }
        }
        JobLanes(lanes: parallelJobs, connect: connect, logger: logger).run(middle, on: conn)
        jobs += order.compactMap { results.get($0) }
        let unreadTotal = results.unreadTotal
        if let retention = try conn.queryOne("SELECT extract(epoch FROM retention)::float8 AS s FROM chat.partition_config WHERE parent_table = 'messages'")?.decode(Double?.self, "s") {
            if let dir = archiveDirectory {
                step("retire") {
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    let r = try Retirement(logger: logger).retire(conn, olderThan: (now ?? Date()).addingTimeInterval(-retention), directory: dir, keepTables: false)
                    return JobSummary(job: "retire", status: "succeeded", seconds: 0, examined: r.count,
                                      changed: r.filter { $0.steps.contains("drop") }.count, anomalies: [:])
                }
            } else {
                logger.warning("messages retention is configured but no --archive-dir was given: nothing retired (partitions are never dropped without an archive)")
            }
        }
        var dead: [String: Int] = [:]
        for row in try conn.query("SELECT reason, count(*) AS n FROM chat.dead_letters WHERE redriven_at IS NULL GROUP BY reason") {
            dead[try row.decode(String.self, "reason")] = try row.decode(Int.self, "n")
        }
        let st = try pm.status(conn, now: now ?? Date())
        var last: [String: Date] = [:]
        for row in try conn.query("SELECT job, max(finished_at) AS t FROM chat.job_runs WHERE status = 'succeeded' AND finished_at IS NOT NULL GROUP BY job") {
            last[try row.decode(String.self, "job")] = try row.decode(Date.self, "t")
        }
        return Summary(startedAt: t0, jobs: jobs, partitionWarnings: warnings.isEmpty ? st.warnings : warnings, unreadTotal: unreadTotal,
                       deadLetters: dead, lastSuccess: last,
                       partitionsAhead: Dictionary(uniqueKeysWithValues: st.tables.map { ($0.table, $0.intervalsAhead) }),
                       rowsInDefault: Dictionary(uniqueKeysWithValues: st.tables.map { ($0.table, $0.rowsInDefault) }),
                       seconds: Date().timeIntervalSince(t0))
    }

    /// Runs one job's body: its summary, with the time it took; a failure or a busy lock becomes
    /// the job's status (the other jobs go on).
    static func perform(_ name: String, logger: Logger, _ body: () throws -> JobSummary) -> JobSummary {
        let s = Date()
        do {
            var r = try body()
            r.seconds = Date().timeIntervalSince(s)
            return r
        } catch let e as JobBusy {
            return JobSummary(job: name, status: "busy", seconds: Date().timeIntervalSince(s), examined: 0, changed: 0, anomalies: [:], error: e.description)
        } catch {
            // One line (the SQLSTATE and statement at debug level, shown with --verbose).
            let line = (error as? PostgresError)?.summary ?? String(describing: error)
            logger.error("\(name) failed: \(line)")
            logger.debug("\(name) failed: \(error)")
            return JobSummary(job: name, status: "failed", seconds: Date().timeIntervalSince(s), examined: 0, changed: 0, anomalies: [:], error: line)
        }
    }

    /// The summaries of jobs that may run on other threads, under a lock.
    final class Results: @unchecked Sendable {
        private var byName: [String: JobSummary] = [:]
        private var total: Int?
        private let lock = NSLock()
        var count: Int { lock.withLock { byName.count } }
        var unreadTotal: Int? { lock.withLock { total } }
        func set(_ name: String, _ s: JobSummary) { lock.withLock { byName[name] = s } }
        func get(_ name: String) -> JobSummary? { lock.withLock { byName[name] } }
        func setUnreadTotal(_ t: Int) { lock.withLock { total = t } }
    }

    /// The summary in Prometheus text exposition format (for node_exporter's textfile collector;
    /// `promtool check metrics` passes it). Every metric is a gauge; a job that failed has
    /// `chatstore_job_success 0` and no rows or anomaly samples, and the unread total is left out
    /// when the unread job failed.
    public static func prometheus(_ s: Summary) -> String {
        var out = ""
        func metric(_ name: String, _ samples: [(String, Double)]) { out += gauge(name, samples) }
        let ok = s.jobs.filter { $0.status == "succeeded" }
        metric("chatstore_up", [("", 1)])
        metric("chatstore_nightly_last_run_timestamp_seconds", [("", s.startedAt.timeIntervalSince1970.rounded())])
        metric("chatstore_nightly_duration_seconds", [("", s.seconds)])
        metric("chatstore_job_success", s.jobs.map { (label(job: $0.job), $0.status == "succeeded" ? 1 : 0) })
        metric("chatstore_job_last_success_timestamp_seconds", s.lastSuccess.sorted { $0.key < $1.key }.map { (label(job: $0.key), $0.value.timeIntervalSince1970.rounded()) })
        metric("chatstore_job_duration_seconds", s.jobs.map { (label(job: $0.job), $0.seconds) })
        metric("chatstore_job_examined_rows", ok.map { (label(job: $0.job), Double($0.examined)) })
        metric("chatstore_job_changed_rows", ok.map { (label(job: $0.job), Double($0.changed)) })
        metric("chatstore_anomalies", ok.flatMap { j in j.anomalies.sorted { $0.key < $1.key }.map { ("job=\"\(esc(j.job))\",category=\"\(esc($0.key))\"", Double($0.value)) } })
        metric("chatstore_unread_messages", s.unreadTotal.map { [("", Double($0))] } ?? [])
        metric("chatstore_dead_letters", ["expired", "poison"].map { ("reason=\"\($0)\"", Double(s.deadLetters[$0] ?? 0)) })
        metric("chatstore_partition_intervals_ahead", s.partitionsAhead.sorted { $0.key < $1.key }.map { ("table=\"\($0.key)\"", Double($0.value)) })
        metric("chatstore_partition_default_rows", s.rowsInDefault.sorted { $0.key < $1.key }.map { ("table=\"\($0.key)\"", Double($0.value)) })
        return out
    }

    /// The textfile for a run that could not connect or failed before its jobs: `chatstore_up 0`,
    /// the time of the attempt, and the last-success times carried over from the previous file
    /// (`previous`, its text), so an alert on their age keeps working.
    public static func prometheusDown(at time: Date, previous: String?) -> String {
        let name = "chatstore_job_last_success_timestamp_seconds"
        let kept = (previous ?? "").split(separator: "\n").filter { $0.hasPrefix(name + "{") }
        var out = gauge("chatstore_up", [("", 0)])
        out += gauge("chatstore_nightly_last_run_timestamp_seconds", [("", time.timeIntervalSince1970.rounded())])
        if !kept.isEmpty { out += header(name) + kept.joined(separator: "\n") + "\n" }
        return out
    }

    /// The help text of each metric, by name (one place for both files).
    static let help: [String: String] = [
        "chatstore_up": "1 when the nightly run could connect and run its jobs.",
        "chatstore_nightly_last_run_timestamp_seconds": "When the nightly run started (Unix time).",
        "chatstore_nightly_duration_seconds": "Duration of the whole nightly run.",
        "chatstore_job_success": "1 when the job succeeded in the last nightly run, 0 when it failed or was busy.",
        "chatstore_job_last_success_timestamp_seconds": "When the job last succeeded (Unix time); alert when it is older than a day.",
        "chatstore_job_duration_seconds": "Duration of each job in the last nightly run.",
        "chatstore_job_examined_rows": "Rows examined by each job that succeeded in the last nightly run.",
        "chatstore_job_changed_rows": "Rows changed by each job that succeeded in the last nightly run.",
        "chatstore_anomalies": "Anomalies found in the last nightly run, by job and category.",
        "chatstore_unread_messages": "Sum of unread counts over every conversation member.",
        "chatstore_dead_letters": "Dead letters not redriven, by reason.",
        "chatstore_partition_intervals_ahead": "Whole partition intervals premade after the current one.",
        "chatstore_partition_default_rows": "Rows sitting in the default partition.",
    ]

    static func header(_ name: String) -> String { "# HELP \(name) \(help[name]!)\n# TYPE \(name) gauge\n" }

    /// A gauge with its samples; nothing when there are none.
    static func gauge(_ name: String, _ samples: [(String, Double)]) -> String {
        guard !samples.isEmpty else { return "" }
        return header(name) + samples.map { "\(name)\($0.0.isEmpty ? "" : "{\($0.0)}") \(number($0.1))\n" }.joined()
    }

    static func esc(_ v: String) -> String { v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") }
    static func label(job: String) -> String { "job=\"\(esc(job))\"" }
    /// Integers without a fraction (`1764547200`, not `1764547200.0`).
    static func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
}
