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

    public init(logger: Logger) { self.logger = logger }

    /// The advisory lock of a job.
    public static func lockKey(_ job: String) -> AdvisoryLockKey { AdvisoryLockKey("chatstore.job.\(job)") }

    /// What the body sees.
    public struct Context {
        public let connection: PostgresConnection
        public let runID: Int64
        /// The watermark of the last successful run of this job, if any.
        public let previousWatermark: String?
        public let logger: Logger
    }

    /// What the body returns: stats (JSON-encodable) and the watermark to record.
    public struct Outcome<Stats: Encodable> {
        public var stats: Stats
        public var watermark: String?
        public init(stats: Stats, watermark: String? = nil) {
            self.stats = stats
            self.watermark = watermark
        }
    }

    /// Runs `body` inside one transaction under the job's lock.
    /// - Throws: `JobBusy` when another run holds the lock; the body's errors (the ledger row is
    ///   then marked failed).
    public func run<Stats: Encodable>(_ job: String, on conn: PostgresConnection,
                                      _ body: (Context) throws -> Outcome<Stats>) throws -> (runID: Int64, stats: Stats) {
        let key = JobRunner.lockKey(job)
        guard try conn.tryAdvisoryLock(key) else { throw JobBusy(job: job) }
        defer { _ = try? conn.advisoryUnlock(key) }
        try conn.setTimeouts(statement: statementTimeout, lock: lockTimeout)
        try conn.execute("SELECT set_config('jit', \(jit ? "on" : "off"), false)")
        // Runs left 'running' can only be interrupted ones: we hold the lock.
        try JobLedger().markInterrupted([job], on: conn)
        let ledger = JobLedger()
        let previous = try conn.queryOne("""
            SELECT watermark FROM chat.job_runs WHERE job = \(job) AND status = 'succeeded' AND watermark IS NOT NULL
            ORDER BY run_id DESC LIMIT 1
            """)?.decode(String?.self, "watermark")
        let runID = try ledger.start(job, on: conn)
        do {
            let stats = try conn.transaction { c -> Stats in
                let outcome = try body(Context(connection: c, runID: runID, previousWatermark: previous, logger: logger))
                try ledger.finish(runID, succeeded: true, statsJSON: jsonText(outcome.stats), watermark: outcome.watermark, on: c)
                return outcome.stats
            }
            return (runID, stats)
        } catch {
            try? ledger.finish(runID, succeeded: false, error: String(describing: error), on: conn)
            throw error
        }
    }
}

/// Another run of the job holds its lock.
public struct JobBusy: Error, CustomStringConvertible, LocalizedError {
    public let job: String
    public var description: String { "another \(job) run is in progress (its advisory lock is held); nothing was done" }
    public var errorDescription: String? { description }
}
