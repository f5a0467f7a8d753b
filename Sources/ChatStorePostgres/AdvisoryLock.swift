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

    /// Takes a session-level advisory lock, retrying for up to `wait` while another session holds it.
    /// - Returns: false when it was still held when `wait` ran out.
    /// `tick` is called between tries (about ten times a second), for a progress display.
    public func tryAdvisoryLock(_ key: AdvisoryLockKey, waiting wait: Duration, tick: (() -> Void)? = nil) throws -> Bool {
        let deadline = ContinuousClock.now + wait
        while true {
            if try tryAdvisoryLock(key) { return true }
            if ContinuousClock.now >= deadline { return false }
            tick?()
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Who holds the advisory lock, in words: pid, application_name, client, since when and what
    /// it is running (the statement's first 100 characters, never bound values). Nil when no
    /// session holds it (or the holder is not visible to this role).
    public func advisoryLockHolder(_ key: AdvisoryLockKey) throws -> String? {
        let high = (key.value >> 32) & 0xFFFF_FFFF, low = key.value & 0xFFFF_FFFF
        guard let row = try queryOne("""
            SELECT a.pid, coalesce(nullif(a.application_name, ''), '?') AS app,
                   coalesce(host(a.client_addr), 'local socket') AS client,
                   to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since,
                   coalesce(a.state, '?') AS state, left(regexp_replace(coalesce(a.query, ''), '[[:space:]]+', ' ', 'g'), 100) AS query
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid = \(high)::bigint::oid AND l.objid = \(low)::bigint::oid AND l.objsubid = 1
            LIMIT 1
            """) else { return nil }
        return "pid \(try row.decode(Int.self, "pid")) (\(try row.decode(String.self, "app")), \(try row.decode(String.self, "client")), "
            + "connected since \(try row.decode(String.self, "since")), \(try row.decode(String.self, "state")): \(try row.decode(String.self, "query")))"
    }
}
