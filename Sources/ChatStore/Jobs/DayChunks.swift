import ChatStorePostgres
import Foundation

extension PostgresConnection {
    /// One chunk of UTC days of a temporary table's rows: `[lo, hi)` as timestamps, and how many
    /// of the table's rows fall in it.
    struct DayChunk {
        var lo: String
        var hi: String
        var rows: Int
        /// Whether the chunk's rows are few enough to probe the big tables row by row (an index
        /// probe per row) rather than hashing every row of the chunk's partitions.
        var probeByKey: Bool { rows <= DayChunk.probeLimit }
        static let probeLimit = JobChunking.probeLimit
    }

    /// The UTC days that rows of a temporary table fall on (by `sent_at`), as chunks in order:
    /// the jobs work a chunk at a time so that each statement reads the partitions of those
    /// days and the day either side, with constant bounds, whatever the history.
    /// - Parameters:
    ///   - maxRows: consecutive days share a chunk while it holds at most this many rows.
    ///   - probing: the caller probes a chunk of few rows by key (`probeByKey`), so a quiet day
    ///     never joins a busy one: the week of late reads before tonight's new day would otherwise
    ///     turn that chunk into a hash of every receipt of the week (the receipt audit at 70
    ///     days: one 1.45 s statement instead of 0.28 + 0.82 s). Two busy days may still share
    ///     a chunk (the same partitions are read either way).
    func dayChunks(of table: String, maxRows: Int = 20_000, probing: Bool = false) throws -> [DayChunk] {
        // Consecutive quiet days (few rows) share a chunk of up to a week; a busy day is a chunk
        // of its own (with `probing`, quiet days never share a busy day's chunk), so a chunk
        // never reads more than a week of partitions and the number of statements stays small
        // when the rows are spread thin over a long history.
        let days = try query(SQL(unsafeRaw: """
            SELECT date_trunc('day', sent_at, 'UTC') AS day, count(*) AS n FROM \(table) GROUP BY 1 ORDER BY 1
            """)).map { (day: try $0.decode(Date.self, "day"), rows: try $0.decode(Int.self, "n")) }
        let chunks = JobChunking.dayChunks(days, maxRows: maxRows, probing: probing).map { ($0.from, $0.to, $0.rows) }
        return chunks.map { DayChunk(lo: PostgresTimestamp.format($0.0), hi: PostgresTimestamp.format($0.1), rows: $0.2) }
    }
}

extension PostgresConnection {
    /// The chunks of a window `[from, to)` (nil: unbounded) for the receipt audit: the UTC days
    /// that hold messages (counted), then the stretches between and around them (no messages:
    /// their receipts can only be orphans), clipped to the window, in order, so that every
    /// receipt filed in the window falls in exactly one chunk.
    func windowDayChunks(from: Date?, to: Date?) throws -> [DayChunk] {
        let lo = from.map(PostgresTimestamp.format) ?? "-infinity", hi = to.map(PostgresTimestamp.format) ?? "infinity"
        let days = try query("""
            SELECT date_trunc('day', sent_at, 'UTC') AS day, count(*) AS n FROM chat.messages
            WHERE sent_at >= \(lo)::timestamptz AND sent_at < \(hi)::timestamptz GROUP BY 1 ORDER BY 1
            """).map { (day: try $0.decode(Date.self, "day"), rows: try $0.decode(Int.self, "n")) }
        return JobChunking.windowChunks(days, from: from, to: to).map { DayChunk(lo: $0.lo, hi: $0.hi, rows: $0.rows) }
    }
}

/// How the nightly jobs split the days their changed rows fall on into statements
/// (`PostgresConnection.dayChunks`), as a pure function so that the rule can be tested alone.
public enum JobChunking {
    /// The rows at or under which a chunk is probed by key rather than hashed.
    public static let probeLimit = 2_000

    /// Chunks of consecutive days, in order, from `(day, rows)` pairs sorted by day (UTC
    /// midnights): days share a chunk while it holds at most `maxRows` rows and spans at most a
    /// week; with `probing`, a quiet day (at most `probeLimit` rows) never shares a busy day's
    /// chunk. Example: 10 rows on Monday and 5,000 on Tuesday are one chunk without `probing`
    /// and two with it.
    public static func dayChunks(_ days: [(day: Date, rows: Int)], maxRows: Int = 20_000, probing: Bool = false)
        -> [(from: Date, to: Date, rows: Int)] {
        var chunks: [(from: Date, to: Date, rows: Int)] = []
        let quiet = { (rows: Int) in rows <= probeLimit }
        for (day, n) in days {
            let next = day.addingTimeInterval(86_400)
            if let last = chunks.last, last.rows + n <= maxRows, next.timeIntervalSince(last.from) <= 7 * 86_400,
               !probing || quiet(last.rows + n) || (!quiet(last.rows) && !quiet(n)) {
                chunks[chunks.count - 1] = (last.from, next, last.rows + n)
            } else {
                chunks.append((day, next, n))
            }
        }
        return chunks
    }

    /// A window's chunks: the days that hold rows, `(day, rows)` sorted by day (UTC
    /// midnights), as chunks (`dayChunks`), clipped to `[from, to)` (nil: unbounded), with the
    /// stretches between and around them as chunks of no rows, so that the chunks cover the
    /// window exactly, in order. Example: rows on Monday only, window from Sunday noon to
    /// Tuesday noon: `[Sun 12:00, Mon)` 0 rows, `[Mon, Tue)`, `[Tue, Tue 12:00)` 0 rows.
    public static func windowChunks(_ days: [(day: Date, rows: Int)], from: Date?, to: Date?) -> [(lo: String, hi: String, rows: Int)] {
        let fmt = { (d: Date) -> String in PostgresTimestamp.format(d) }
        let busy = dayChunks(days).map { c -> (lo: String, hi: String, rows: Int) in
            let lo = from.map { max($0, c.from) } ?? c.from, hi = to.map { min($0, c.to) } ?? c.to
            return (fmt(lo), fmt(hi), c.rows)
        }
        let lo = from.map(fmt) ?? "-infinity", hi = to.map(fmt) ?? "infinity"
        var all = busy
        for g in gaps(busy.map { ($0.lo, $0.hi) }) {
            let a = g.lo == "-infinity" ? lo : g.lo, b = g.hi == "infinity" ? hi : g.hi
            if a != b { all.append((a, b, 0)) }
        }
        // In time order: -infinity first, infinity last, timestamps (one format) in between.
        func key(_ s: String) -> (Int, String) { s == "-infinity" ? (0, "") : s == "infinity" ? (2, "") : (1, s) }
        return all.sorted { key($0.lo) < key($1.lo) }
    }

    /// The stretches of time that `chunks` (in order, as `[lo, hi)` timestamps) leave out,
    /// from `-infinity` to `infinity`: before the first, between two that do not touch, and
    /// after the last. Example: `[(a, b), (c, d)]` with `b < c` gives `(-infinity, a)`,
    /// `(b, c)` and `(d, infinity)`; no chunks give the whole line.
    public static func gaps(_ chunks: [(lo: String, hi: String)]) -> [(lo: String, hi: String)] {
        var out: [(lo: String, hi: String)] = []
        var from = "-infinity"
        for c in chunks {
            if c.lo != from { out.append((from, c.lo)) }
            from = c.hi
        }
        out.append((from, "infinity"))
        return out
    }
}
