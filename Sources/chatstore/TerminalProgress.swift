import ChatStore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Draws `Progress` reports as one line on standard error, redrawn in place at most ten times a
/// second: the phase, done/total with a percentage when the total is known, the rate over the
/// phase, and the time left. Installed only when standard error is a terminal and neither
/// `--quiet` nor `--json` is given; cleared when the command ends.
final class TerminalProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var phase = ""
    private var phaseStart = Date()
    private var phaseBase: Int64 = 0     // what was done when the rate's clock started
    private var unit = ""
    private var done: Int64 = 0
    private var lastDraw = Date.distantPast
    private var drawn = false

    /// Installs a terminal progress line for this process when `enabled`.
    static func start(enabled: Bool) {
        guard enabled else { return }
        let p = TerminalProgress()
        Progress.install { p.update($0) }
        atexit { TerminalProgress.clearLine() }   // only if a line is drawn
        TerminalProgress.current = p
    }

    /// Removes the line (before a command prints its summary).
    static func stop() {
        Progress.install(nil)
        current?.clear()
        current = nil
    }

    nonisolated(unsafe) private static var current: TerminalProgress?

    /// Wipes the progress line so that text written next starts on a clean line; the next
    /// report draws it again.
    static func clearLine() { current?.clear() }

    func update(_ u: ProgressUpdate) {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        if u.phase != phase {
            // A step of the same work ("generate: day 2/31" after "generate: day 1/31", the same
            // unit, counting on) keeps its rate and time left over the whole work.
            let root = { (p: String) in p.split(separator: ":", maxSplits: 1).first.map(String.init) ?? p }
            let continues = root(u.phase) == root(phase) && u.unit == unit && u.done >= done
            if !continues { phaseStart = now; phaseBase = u.done }
            phase = u.phase
            lastDraw = .distantPast
        }
        unit = u.unit; done = u.done
        if !drawn { lastDraw = .distantPast }
        let finished = u.total.map { u.done >= $0 } ?? false
        guard now.timeIntervalSince(lastDraw) >= 0.1 || finished else { return }
        lastDraw = now
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + TerminalProgress.line(u, elapsed: now.timeIntervalSince(phaseStart), base: phaseBase, width: TerminalProgress.columns())).utf8))
        drawn = true
    }

    func clear() {
        lock.lock(); defer { lock.unlock() }
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        drawn = false
    }

    /// The terminal's width (80 when unknown).
    static func columns() -> Int {
        var w = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0 { return Int(w.ws_col) }
        return 80
    }

    /// One progress line: `phase: 1,234/5,678 rows (21%) · 4,321 rows/s · 0:01 left`.
    /// - Parameter base: what was already done when `elapsed` started (the rate counts from it).
    static func line(_ u: ProgressUpdate, elapsed: Double, base: Int64 = 0, width: Int) -> String {
        func amount(_ n: Int64) -> String {
            if u.unit == "bytes" { return String(format: "%.1f MiB", Double(n) / 1_048_576) }
            let f = NumberFormatter()
            f.numberStyle = .decimal
            return f.string(from: NSNumber(value: n)) ?? String(n)
        }
        let unit = u.unit == "bytes" ? "" : " " + u.unit
        var s = "\(u.phase): \(amount(u.done))"
        if let total = u.total, total > 0 {
            s += "/\(amount(total))\(unit) (\(min(100, Int(Double(u.done) * 100 / Double(total))))%)"
        } else {
            s += unit
        }
        if elapsed >= 0.5, u.done > base {
            let rate = Double(u.done - base) / elapsed
            s += " · " + (u.unit == "bytes" ? String(format: "%.1f MiB/s", rate / 1_048_576) : "\(amount(Int64(rate)))\(unit)/s")
            if let total = u.total, total > u.done {
                let left = Int(Double(total - u.done) / rate)
                s += " · " + (left >= 3600 ? "\(left / 3600)h\(String(format: "%02d", left % 3600 / 60))m" : "\(left / 60):\(String(format: "%02d", left % 60))") + " left"
            }
        }
        return s.count > width - 1 ? String(s.prefix(width - 2)) + "…" : s
    }
}

/// Standard output for this tool: wipes the progress line first, so a summary never lands on
/// the end of it. (Shadows the standard library's `print` within this module.)
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    TerminalProgress.clearLine()
    Swift.print(items.map { "\($0)" }.joined(separator: separator), terminator: terminator)
}
