import Foundation

/// A 64-bit key for PostgreSQL session advisory locks, derived from a name so that every binary
/// computes the same key (FNV-1a over the UTF-8 bytes).
public struct AdvisoryLockKey: Hashable, Sendable, CustomStringConvertible {
    public let value: Int64
    public let name: String

    /// Derives the key from a stable name such as `chatstore.migrate`.
    public init(_ name: String) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name.utf8 { h ^= UInt64(b); h = h &* 0x100_0000_01b3 }
        value = Int64(bitPattern: h)
        self.name = name
    }

    public var description: String { "\(name) (\(value))" }
}

extension PostgresConnection {
    /// Takes a session-level advisory lock without waiting.
    /// - Returns: true when the lock was taken; false when another session holds it.
    public func tryAdvisoryLock(_ key: AdvisoryLockKey) throws -> Bool {
        try scalar(Bool.self, "SELECT pg_try_advisory_lock(\(key.value))")
    }

    /// Takes a session-level advisory lock, waiting for it (bounded by `lock_timeout`).
    public func advisoryLock(_ key: AdvisoryLockKey) throws {
        try execute("SELECT pg_advisory_lock(\(key.value))")
    }

    /// Releases a session-level advisory lock.
    /// - Returns: false when this session did not hold it.
    @discardableResult
    public func advisoryUnlock(_ key: AdvisoryLockKey) throws -> Bool {
        try scalar(Bool.self, "SELECT pg_advisory_unlock(\(key.value))")
    }

    /// Runs `body` holding the lock (waiting for it), and releases it afterwards.
    public func withAdvisoryLock<T>(_ key: AdvisoryLockKey, _ body: () throws -> T) throws -> T {
        try advisoryLock(key)
        defer { _ = try? advisoryUnlock(key) }
        return try body()
    }
}
