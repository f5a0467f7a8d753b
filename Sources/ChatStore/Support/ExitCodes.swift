/// Exit codes of the `chatstore` command, stable for scripts and cron.
public enum ExitCodes {
    /// Success, nothing to report.
    public static let ok: Int32 = 0
    /// The command failed (a database error, bad input, I/O).
    public static let failure: Int32 = 1
    /// Finished, but found anomalies or rejected input (audit findings, rejected lines).
    public static let anomalies: Int32 = 2
    /// Another run holds the lock for this work; nothing was done.
    public static let busy: Int32 = 3
    /// Partition coverage is about to run out (or rows sit in a default partition).
    public static let coverageLow: Int32 = 4
    /// The database's schema does not match this binary (unknown version, edited migration).
    public static let schemaMismatch: Int32 = 5
    /// Invalid command line (ArgumentParser's validation exit code).
    public static let usage: Int32 = 64
    /// An input path is not what the command reads (sysexits' EX_NOINPUT): e.g. `archive verify`
    /// of a directory that holds no archive.
    public static let noInput: Int32 = 66
    /// Could not connect to PostgreSQL.
    public static let unavailable: Int32 = 69
}
