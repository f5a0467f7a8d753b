import Foundation

/// How far long work has come, for a progress display: a phase, the amount done, the total
/// when it is known, and the unit of both.
public struct ProgressUpdate: Sendable, Equatable {
    /// What is being done (`export messages_p20261122: receipts`).
    public var phase: String
    /// Units done in this phase.
    public var done: Int64
    /// Units in the whole phase, when known (for a percentage and an ETA).
    public var total: Int64?
    /// `rows`, `bytes`, `lines`, `jobs`, `statements`, …; `bytes` is shown in MiB.
    public var unit: String

    public init(phase: String, done: Int64, total: Int64? = nil, unit: String) {
        self.phase = phase
        self.done = done
        self.total = total
        self.unit = unit
    }
}

/// Where library code reports progress. The command-line tool installs a handler that draws one
/// line on a terminal; without a handler (a library user, cron, `--quiet`, `--json`), reports
/// cost one lock and nothing else. Safe to call from any thread.
public enum Progress {
    nonisolated(unsafe) private static var handler: (@Sendable (ProgressUpdate) -> Void)?
    private static let lock = NSLock()

    /// Installs (or with nil removes) the handler for the whole process.
    public static func install(_ h: (@Sendable (ProgressUpdate) -> Void)?) {
        lock.lock(); defer { lock.unlock() }
        handler = h
    }

    /// Reports progress to the installed handler, if any.
    public static func report(_ phase: String, done: Int64, total: Int64? = nil, unit: String) {
        lock.lock()
        let h = handler
        lock.unlock()
        h?(ProgressUpdate(phase: phase, done: done, total: total, unit: unit))
    }

    /// True when a handler is installed (to skip computing a total nobody will see).
    public static var isActive: Bool {
        lock.lock(); defer { lock.unlock() }
        return handler != nil
    }
}
