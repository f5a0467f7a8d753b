import ChatStorePostgres
import Foundation
import Logging

/// How chatstore takes table locks the application also needs (`ATTACH`/`DETACH PARTITION`,
/// `DROP` of a partition, creating a partition), so that the application never waits on us for
/// more than a moment.
///
/// A DDL statement that waits for its lock makes every later insert into that table wait behind
/// it. So each attempt runs with a short `lock_timeout` (100 ms by default): the application
/// waits at most that long, once per attempt. When the lock is not free, the step backs off
/// (0.1 s, doubling to 3 s, with jitter) and tries again, up to `retryFor`. `DETACH PARTITION …
/// CONCURRENTLY` would avoid the exclusive lock, but PostgreSQL refuses it on tables with a
/// DEFAULT partition, which ours have.
public struct ShortLocks: Sendable {
    /// `lock_timeout` of each attempt: the longest an application query waits behind one.
    public var lockTimeout: Duration = .milliseconds(100)
    /// How long a step keeps retrying before it gives up.
    public var retryFor: Duration = .seconds(60)

    public init(lockTimeout: Duration = .milliseconds(100), retryFor: Duration = .seconds(60)) {
        self.lockTimeout = lockTimeout
        self.retryFor = retryFor
    }

    /// `lock_timeout` in milliseconds, as `set_config` takes it.
    public var lockTimeoutMillis: Int {
        max(1, Int(lockTimeout.components.seconds * 1000 + lockTimeout.components.attoseconds / 1_000_000_000_000_000))
    }

    /// Runs `body` (which sets `lock_timeout` to `lockTimeoutMillis` in its transaction) until it
    /// succeeds, retrying lock timeouts, deadlocks and serialization failures with back-off.
    /// - Throws: `LockNotAvailable` after `retryFor`; any other error at once.
    public func run<T>(_ what: String, logger: Logger, _ body: () throws -> T) throws -> T {
        let started = ContinuousClock.now
        var pause = 0.1
        var attempt = 1
        while true {
            do {
                return try body()
            } catch let e as PostgresError where e.sqlState?.isTransient ?? false {
                let waited = ContinuousClock.now - started
                if waited >= retryFor {
                    throw LockNotAvailable(what: what, attempts: attempt, waited: waited, lastError: e.message)
                }
                if attempt == 1 || attempt % 10 == 0 {
                    logger.info("\(what): the lock is busy (\(e.message)); retrying with back-off for up to \(retryFor)")
                }
                Thread.sleep(forTimeInterval: pause * Double.random(in: 0.5...1.5))
                pause = min(pause * 2, 3)
                attempt += 1
            }
        }
    }
}

/// A step that could not get its table lock within `ShortLocks.retryFor`.
public struct LockNotAvailable: Error, CustomStringConvertible, LocalizedError {
    public var what: String
    public var attempts: Int
    public var waited: Duration
    public var lastError: String
    public var description: String {
        "\(what): could not get the table lock in \(attempts) short attempts over \(waited.components.seconds) s (\(lastError)); a long transaction is holding it: find it in pg_stat_activity, then run again"
    }
    public var errorDescription: String? { description }
}
