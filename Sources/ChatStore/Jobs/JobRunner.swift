import ChatStorePostgres
import Foundation
import Logging

/// Runs one batch job: takes its advisory lock (a second concurrent run gets `JobBusy` at once),
/// records the run in the ledger, applies `lock_timeout` and `statement_timeout`, and commits the
/// job's work together with the ledger's "succeeded" row, so a run killed at any instant leaves
/// either everything or nothing (the interrupted ledger row is marked failed by the next run).
public struct JobRunner: Sendable {
    public let logger: Logger
    /// `lock_timeout` for the job's statements: jobs never queue behind the application's locks.
    public var lockTimeout: Duration = .seconds(5)
    /// `statement_timeout` for each statement.
    public var statementTimeout: Duration = .seconds(3600)
    /// Allow PostgreSQL's JIT compilation for the job's statements (off by default). The planner
    /// sums the cost of every partition before run-time pruning removes most of them, so with a
    /// long history the jobs' bounded queries cross `jit_above_cost` and compile code for
    /// partitions they never read: on 70 days of history JIT took 8.5 s of a 20 s nightly run.
    public var jit = false
    /// How long a run waits for its lock while another run holds it before giving up with
    /// `JobBusy` (exit 3). A killed client's backend lets go within a second or two (every
    /// session sets `client_connection_check_interval`), so a rerun right after a crash waits
    /// for that, not for the dead run's statement to finish.
    public var lockWait: Duration = .seconds(15)

    public init(logger: Logger) { self.logger = logger }

    /// The session settings of a job's connection (and of a helper connection working for it):
    /// timeouts, JIT, the statistics target of the temporary tables' ANALYZE.
    public func configure(_ conn: PostgresConnection) throws {
        try conn.setTimeouts(statement: statementTimeout, lock: lockTimeout)
        try conn.execute("SELECT set_config('jit', \(jit ? "on" : "off"), false)")
        // The jobs ANALYZE only their temporary tables, to give the planner their sizes and
        // distinct counts; a sample of 3,000 rows does that (the default 30,000 took 60-80 ms per
        // table of 100,000s of rows, a tenth of a night's unread job).
        try conn.execute("SELECT set_config('default_statistics_target', '10', false)")
    }

    /// The advisory lock of a job.
    public static func lockKey(_ job: String) -> AdvisoryLockKey { AdvisoryLockKey("chatstore.job.\(job)") }

    /// What the body sees.
    public struct Context {
        public let connection: PostgresConnection
        public let runID: Int64
        /// The watermark of the last successful run of this job that recorded a snapshot, if any.
        public let previousWatermark: String?
        /// The snapshot that run saw (`pg_snapshot` text, `xmin:xmax:xip,...`): every row whose
        /// `change_xid` is not visible in it changed since. Nil on a first run.
        public let previousSnapshot: String?
        /// The snapshot this run sees: every statement of the body runs at it (REPEATABLE READ).
        public let snapshot: String
        public let logger: Logger

        /// The variables the change queries take: `prev` (the previous snapshot) and `prev_xmin`
        /// (its xmin, for the BRIN range). Only valid when `previousSnapshot` is set.
        public var changeVariables: [String: any PostgresEncodable] {
            ["prev": previousSnapshot ?? "1:1:", "prev_xmin": String(PGSnapshot.xmin(previousSnapshot ?? "1:1:"))]
        }
    }

    /// What the body returns: stats (JSON-encodable), the watermark to record, and whether this
    /// run's snapshot becomes the next run's starting point (false for runs over a window given
    /// by hand, which leave the nightly's window where it was).
    public struct Outcome<Stats: Encodable> {
        public var stats: Stats
        public var watermark: String?
        public var recordSnapshot: Bool
        public init(stats: Stats, watermark: String? = nil, recordSnapshot: Bool = true) {
            self.stats = stats
            self.watermark = watermark
            self.recordSnapshot = recordSnapshot
        }
    }

    /// Takes a job's lock, waiting up to `wait`; then `JobBusy` naming the session that holds it.
    public static func acquire(_ key: AdvisoryLockKey, job: String, on conn: PostgresConnection, waiting wait: Duration) throws {
        if try conn.tryAdvisoryLock(key) { return }
        // Held: say so (and by whom) while waiting.
        let holder = (try? conn.advisoryLockHolder(key)) ?? nil
        let total = Int64(wait.components.seconds)
        let started = ContinuousClock.now
        let gotIt = try conn.tryAdvisoryLock(key, waiting: wait) {
            Progress.report("\(job): waiting for the lock held by \(holder ?? "another session")", done: Int64((ContinuousClock.now - started).components.seconds), total: total, unit: "s")
        }
        guard gotIt else {
            throw JobBusy(job: job, holder: try? conn.advisoryLockHolder(key), waited: wait)
        }
    }

    /// The watermark and snapshot of the last successful run of `job` that recorded a snapshot
    /// (runs over a window given by hand and `--verify` runs record none).
    public static func previousRun(_ job: String, on conn: PostgresConnection) throws -> (watermark: String?, snapshot: String?) {
        let row = try conn.queryOne("""
            SELECT watermark, snapshot::text AS snapshot FROM chat.job_runs
            WHERE job = \(job) AND status = 'succeeded' AND snapshot IS NOT NULL
            ORDER BY run_id DESC LIMIT 1
            """)
        return (try row?.decode(String?.self, "watermark"), try row?.decode(String?.self, "snapshot"))
    }

    /// Runs `body` inside one REPEATABLE READ transaction under the job's lock, and records the
    /// transaction's snapshot with the run, so the next run finds changes in commit order. A
    /// serialization failure (a concurrent writer updated a row the job updates) reruns the body
    /// from the start, up to three times.
    /// - Throws: `JobBusy` when another run holds the lock; the body's errors (the ledger row is
    ///   then marked failed).
    public func run<Stats: Encodable>(_ job: String, on conn: PostgresConnection,
                                      _ body: (Context) throws -> Outcome<Stats>) throws -> (runID: Int64, stats: Stats) {
        let key = JobRunner.lockKey(job)
        try JobRunner.acquire(key, job: job, on: conn, waiting: lockWait)
        defer { _ = try? conn.advisoryUnlock(key) }
        try configure(conn)
        // Runs left 'running' can only be interrupted ones: we hold the lock.
        try JobLedger().markInterrupted([job], on: conn)
        let ledger = JobLedger()
        let (previousWatermark, previousSnapshot) = try JobRunner.previousRun(job, on: conn)
        let runID = try ledger.start(job, on: conn)
        var attempt = 0
        while true {
            attempt += 1
            do {
                let stats = try conn.transaction { c -> Stats in
                    try c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    let snapshot = try c.scalar(String.self, "SELECT pg_current_snapshot()::text")
                    let outcome = try body(Context(connection: c, runID: runID, previousWatermark: previousWatermark,
                                                   previousSnapshot: previousSnapshot, snapshot: snapshot, logger: logger))
                    try ledger.finish(runID, succeeded: true, statsJSON: jsonText(outcome.stats), watermark: outcome.watermark,
                                      snapshot: outcome.recordSnapshot ? snapshot : nil, on: c)
                    return outcome.stats
                }
                return (runID, stats)
            } catch let e as PostgresError where e.sqlState == .serializationFailure && attempt < 3 {
                logger.info("\(job): a concurrent writer changed a row this run updates (SQLSTATE 40001); running it again")
                continue
            } catch {
                try? ledger.finish(runID, succeeded: false, error: String(describing: error), on: conn)
                throw error
            }
        }
    }
}

/// Reading `pg_snapshot` text (`xmin:xmax:xip,...`).
enum PGSnapshot {
    /// The snapshot's xmin: every transaction below it had ended when the snapshot was taken.
    static func xmin(_ text: String) -> Int64 {
        Int64(text.split(separator: ":", maxSplits: 1).first ?? "1") ?? 1
    }
}

/// Another run of the job holds its lock.
public struct JobBusy: Error, CustomStringConvertible, LocalizedError {
    public let job: String
    /// The session holding the lock, in words, when it could be seen.
    public var holder: String?
    /// How long this run waited.
    public var waited: Duration = .zero
    public init(job: String, holder: String? = nil, waited: Duration = .zero) {
        self.job = job
        self.holder = holder
        self.waited = waited
    }
    public var description: String {
        "another \(job) run is in progress (its advisory lock is held\(holder.map { " by \($0)" } ?? ""); waited \(waited.components.seconds) s); nothing was done"
    }
    public var errorDescription: String? { description }
}
