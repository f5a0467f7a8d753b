import ChatStorePostgres
import Foundation

/// One lock per time range, so that the commands that read or change a range's rows, archive and
/// ledger (archive export, retire, restore, verify against the database) exclude each other: a
/// session advisory lock keyed by the range's messages partition name, taken before anything of
/// the range is read and held to the end. A command that finds it held waits a bounded time,
/// then gives up with `RangeBusy` (exit 3), naming the holder; nothing was done. The same session
/// may take it again (retire verifies and exports under its own lock).
public enum RangeLock {
    /// How long a command waits for a range held by another (default 15 s).
    public static let defaultWait: Duration = .seconds(15)

    static func key(_ partition: String) -> AdvisoryLockKey { JobRunner.lockKey("range " + partition) }

    /// Runs `body` holding the lock of `partition`'s range.
    public static func with<T>(_ conn: PostgresConnection, partition: String, waiting wait: Duration = defaultWait,
                               _ body: () throws -> T) throws -> T {
        let k = key(partition)
        guard try conn.tryAdvisoryLock(k, waiting: wait) else {
            throw RangeBusy(partition: partition, holder: try? conn.advisoryLockHolder(k), waited: wait)
        }
        defer { _ = try? conn.advisoryUnlock(k) }
        return try body()
    }
}

/// Another command holds a range's lock (exit 3): nothing was done.
public struct RangeBusy: Error, CustomStringConvertible, LocalizedError {
    public let partition: String
    public var holder: String?
    public var waited: Duration
    public var description: String {
        "the range of \(partition) is in use by another command (its lock is held\(holder.map { " by \($0)" } ?? ""); waited \(waited.components.seconds) s); nothing was done: run again when it has finished"
    }
    public var errorDescription: String? { description }
}
