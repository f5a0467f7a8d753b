import ChatStorePostgres
import Foundation

/// The job-run ledger (`chat.job_runs`): one row per run with start, end, status, watermark and
/// stats as JSON.
public struct JobLedger: Sendable {
    public init() {}

    /// Records the start of a run and returns its id.
    public func start(_ job: String, on conn: PostgresConnection) throws -> Int64 {
        let host = ProcessInfo.processInfo.hostName
        return try conn.scalar(Int64.self, """
            INSERT INTO chat.job_runs (job, host, pid) VALUES (\(job), \(host), \(Int32(getpid()))) RETURNING run_id
            """)
    }

    /// Records the end of a run.
    public func finish(_ runID: Int64, succeeded: Bool, statsJSON: String = "{}", watermark: String? = nil,
                       snapshot: String? = nil, error: String? = nil, on conn: PostgresConnection) throws {
        try conn.execute("""
            UPDATE chat.job_runs SET finished_at = clock_timestamp(), status = \(succeeded ? "succeeded" : "failed"),
                   stats = \(JSONB(statsJSON)), watermark = coalesce(\(watermark), watermark), error = \(error),
                   snapshot = \(snapshot)::pg_snapshot
            WHERE run_id = \(runID)
            """)
    }

    /// Marks runs of these jobs still 'running' as failed. Call only while holding the jobs' lock:
    /// then such rows can only be left by a process that died.
    public func markInterrupted(_ jobs: [String], on conn: PostgresConnection) throws {
        for job in jobs {
            try conn.execute("""
                UPDATE chat.job_runs SET status = 'failed', finished_at = coalesce(finished_at, now()),
                       error = 'interrupted (the process ended before the run committed)'
                WHERE job = \(job) AND status = 'running'
                """)
        }
    }

    /// The end time of the last successful run of `job`, if any.
    public func lastSuccess(_ job: String, on conn: PostgresConnection) throws -> Date? {
        try conn.queryOne("""
            SELECT max(finished_at) AS t FROM chat.job_runs WHERE job = \(job) AND status = 'succeeded'
            """)?.decode(Date?.self, "t")
    }
}

/// Encodes a value as compact JSON text (for ledger stats).
func jsonText<T: Encodable>(_ value: T) -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    enc.dateEncodingStrategy = .iso8601
    return (try? String(decoding: enc.encode(value), as: UTF8.self)) ?? "{}"
}
