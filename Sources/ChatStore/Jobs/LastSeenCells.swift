import ChatStorePostgres
import Foundation

/// The receipt cells behind the last-seen rollup's change detection
/// (`Migrations/0010_last_seen_cells.sql`, `0011_last_seen_cell_windows.sql`): what the rollup
/// last counted per (sent day, bucket), a bucket being one range of conversation ids and one
/// window of the day, so that a run recounts only the cells its changed receipts fall in and
/// recomputes the days whose totals moved, including the day a receipt's overwritten
/// `delivered_at` or `read_at` left.
public enum LastSeenCells {
    /// About how many cells (conversation ranges x windows of the day) each sent day is split into.
    public static let targetBuckets: Int64 = 4096
    /// Each sent day is split into 2^windowBits windows of its UTC time (64 of 22.5 minutes): a
    /// large group's receipts of a day are spread over 64 cells, so a late read in it costs the
    /// recount of one window's share of them (one cell per range and day held up to half of a
    /// day's receipts in the nightly benchmark; 16 windows still left 13,397 receipts to recount
    /// for 10 late reads of one day).
    public static let windowBits = 6

    /// The bucket of a receipt: `(conversation_id >> shift) << windowBits | window`, where the
    /// window is the receipt's UTC time of day divided into 2^windowBits equal parts.
    public struct Layout: Sendable, Equatable {
        public var shift: Int
        /// How many conversation ranges the ids present at build time spanned.
        public var buckets: Int64
        /// Windows per day: 2^windowBits (0 for cells built before windows existed).
        public var windowBits: Int
        /// Cells per sent day.
        public var cells: Int64 { buckets << Int64(windowBits) }
        public init(shift: Int, buckets: Int64, windowBits: Int = LastSeenCells.windowBits) {
            self.shift = shift; self.buckets = buckets; self.windowBits = windowBits
        }
        /// The variables the cell queries take (:'shift', :'wbits').
        var variables: [String: any PostgresEncodable] { ["shift": String(shift), "wbits": String(windowBits)] }
    }

    /// The smallest power-of-two width that splits the ids `lo...hi` into at most
    /// `targetBuckets >> windowBits` ranges. Example: ids 1...4566 give shift 7 (36 ranges,
    /// 2,304 cells a day).
    public static func layout(lowestID lo: Int64, highestID hi: Int64) -> Layout {
        let ranges = targetBuckets >> Int64(windowBits)
        var shift = 0
        while shift < 62 {
            let (span, overflow) = (hi >> Int64(shift)).subtractingReportingOverflow(lo >> Int64(shift))
            if !overflow && span < ranges { return Layout(shift: shift, buckets: span + 1) }
            shift += 1
        }
        return Layout(shift: 62, buckets: (hi >> 62) - (lo >> 62) + 1)
    }

    /// The layout the cells were built with, or nil when they have not been built (the first
    /// run, or the first run after the migration that added them).
    static func layout(_ c: PostgresConnection) throws -> Layout? {
        try c.queryOne("SELECT bucket_shift, buckets, window_bits FROM chat.last_seen_state").map {
            Layout(shift: try $0.decode(Int.self, "bucket_shift"), buckets: try $0.decode(Int64.self, "buckets"),
                   windowBits: try $0.decode(Int.self, "window_bits"))
        }
    }

    /// Whether the conversation ids now span four times the buckets the layout was chosen for
    /// (cells built on a young or empty database), or the cells were built without windows of
    /// the day (before migration 0011): the cells are then rebuilt, so that their number stays
    /// near `targetBuckets` per sent day as the service grows (a rebuild each time the id span
    /// quadruples).
    static func outgrown(_ c: PostgresConnection, _ layout: Layout) throws -> Bool {
        try layout.windowBits != windowBits || layoutForPresentIDs(c).shift >= layout.shift + 2
    }

    /// The layout for the conversation ids present now (one bucket when there are none).
    private static func layoutForPresentIDs(_ c: PostgresConnection) throws -> Layout {
        let ids = try c.queryOne("SELECT min(conversation_id) AS lo, max(conversation_id) AS hi FROM chat.conversations")
        return layout(lowestID: try ids?.decode(Int64?.self, "lo") ?? 0, highestID: try ids?.decode(Int64?.self, "hi") ?? 0)
    }

    private static func createTemporaryTables(_ c: PostgresConnection) throws {
        try c.execute("DROP TABLE IF EXISTS pg_temp.last_seen_recount, pg_temp.last_seen_scope")
        try c.execute("""
            CREATE TEMP TABLE last_seen_recount (sent_day date, bucket bigint, kind "char", day date, n bigint, s numeric, h bigint)
            ON COMMIT DROP
            """)
        try c.execute("CREATE TEMP TABLE last_seen_scope (sent_day date, bucket bigint) ON COMMIT DROP")
    }

    /// Builds every cell from the receipts, one partition (or one stretch of the default
    /// partition) per statement, so memory and temporary space are those of one partition.
    /// Replaces whatever cells and layout were there. Returns how many cells it wrote.
    @discardableResult
    static func build(_ c: PostgresConnection, partitions: PartitionManager) throws -> Int {
        let layout = try layoutForPresentIDs(c)
        try c.execute("DELETE FROM chat.last_seen_cells")
        try c.execute("DELETE FROM chat.last_seen_state")
        try c.execute("INSERT INTO chat.last_seen_state (bucket_shift, buckets, window_bits) VALUES (\(layout.shift), \(layout.buckets), \(layout.windowBits))")
        try createTemporaryTables(c)
        let parts = try partitions.partitions(c, parent: "receipts").map { (from: $0.from, to: $0.to) }.sorted { $0.from < $1.from }
        var spare: (Date, Date)?
        if let row = try c.queryOne("SELECT min(sent_at) AS lo, max(sent_at) AS hi FROM chat.receipts_default"),
           let lo = try row.decode(Date?.self, "lo"), let hi = try row.decode(Date?.self, "hi") {
            spare = (lo, hi)
        }
        let ranges = LastSeenCells.ranges(partitions: parts, defaultRows: spare)
        let recount = try QueryFile.named("last_seen_cells.sql")
        let store = try QueryFile.named("last_seen_cells_store.sql").statements(["whole_days": "{}"])
        var written = 0
        for r in ranges {
            try c.execute(try recount.statement(layout.variables.merging(["lo": PostgresTimestamp.format(r.from), "hi": PostgresTimestamp.format(r.to),
                                                                          "all": "true", "buckets": "{}"]) { $1 }))
            // The scope is empty here, so the store's deletions delete nothing: what it counts
            // is the cells it inserts.
            for statement in store { written += try c.executeCountingRows(statement) }
            try c.execute("TRUNCATE pg_temp.last_seen_recount")
        }
        return written
    }

    /// Non-overlapping ranges of `sent_at` that cover every receipt: each partition, and the
    /// stretches between and around them where the default partition holds rows (its earliest
    /// and latest `sent_at`), so that no row is counted twice or missed.
    public static func ranges(partitions: [(from: Date, to: Date)], defaultRows: (Date, Date)?) -> [(from: Date, to: Date)] {
        var out: [(from: Date, to: Date)] = []
        let lo = min(partitions.first?.from ?? .distantFuture, defaultRows?.0 ?? .distantFuture)
        let hi = max(partitions.last?.to ?? .distantPast, (defaultRows?.1).map { $0.addingTimeInterval(1) } ?? .distantPast)
        guard lo < hi else { return [] }
        var cursor = lo
        for p in partitions {
            if defaultRows != nil && cursor < p.from { out.append((cursor, p.from)) }
            out.append((p.from, p.to))
            cursor = max(cursor, p.to)
        }
        if defaultRows != nil && cursor < hi { out.append((cursor, hi)) }
        return out
    }

    /// Recounts the cells holding receipts written since the previous snapshot (or repaired by
    /// the audit), compares them with the stored ones and stores the recount. Returns the days
    /// whose deliveries or reads moved and how many cells were recounted.
    static func update(_ c: PostgresConnection, layout: Layout, changes: [String: any PostgresEncodable], citus: Bool) throws -> (days: [Date], cells: Int) {
        let vars = changes.merging(layout.variables) { $1 }
        var bySentDay: [Date: [Int64]] = [:]
        for row in try c.query(try QueryFile.named("last_seen_keys.sql").statement(vars)) {
            bySentDay[try row.decode(Date.self, "sent_day"), default: []].append(try row.decode(Int64.self, "bucket"))
        }
        guard !bySentDay.isEmpty else { return ([], 0) }
        try createTemporaryTables(c)
        // Every changed cell, then per sent day the share of its receipts they hold (from the
        // stored delivery counts: conversations differ a lot in size, buckets with them).
        let keys = bySentDay.flatMap { d, bs in bs.map { (PostgresTimestamp.format(d), $0) } }
        try c.execute("""
            INSERT INTO pg_temp.last_seen_scope
            SELECT (d AT TIME ZONE 'UTC')::date, b FROM unnest(\("{" + keys.map { "\"\($0.0)\"" }.joined(separator: ",") + "}")::timestamptz[],
                                                         \("{" + keys.map { String($0.1) }.joined(separator: ",") + "}")::bigint[]) x(d, b)
            """)
        var share: [Date: (changed: Int64, total: Int64)] = [:]
        for row in try c.query("""
            SELECT k.sent_day::timestamptz AS sent_day,
                   coalesce(sum((SELECT sum(n) FROM chat.last_seen_cells c WHERE c.sent_day = k.sent_day AND c.bucket = k.bucket AND c.kind = 'd')), 0)::bigint AS changed,
                   coalesce((SELECT sum(n) FROM chat.last_seen_cells c WHERE c.sent_day = k.sent_day AND c.kind = 'd'), 0)::bigint AS total
            FROM pg_temp.last_seen_scope k GROUP BY k.sent_day
            """) {
            share[try row.decode(Date.self, "sent_day")] = (try row.decode(Int64.self, "changed"), try row.decode(Int64.self, "total"))
        }
        let onePass = try QueryFile.named("last_seen_cells.sql")
        let byKey = try QueryFile.named("last_seen_cells_by_key.sql")
        var cells = 0
        var wholeDays: [String] = []
        for (sentDay, buckets) in bySentDay.sorted(by: { $0.key < $1.key }) {
            let lo = PostgresTimestamp.format(sentDay), hi = PostgresTimestamp.format(sentDay.addingTimeInterval(86_400))
            let list = "{" + buckets.map(String.init).joined(separator: ",") + "}"
            let rows = share[sentDay] ?? (0, 0)
            switch LastSeenCells.mode(changedBuckets: buckets.count, changedReceipts: rows.changed, receipts: rows.total, layout: layout, citus: citus) {
            case .all:
                try c.execute("DELETE FROM pg_temp.last_seen_scope WHERE sent_day = (\(lo)::timestamptz AT TIME ZONE 'UTC')::date")
                wholeDays.append(String(lo.split(separator: " ")[0]))  // the date of the UTC midnight
                try c.execute(try onePass.statement(layout.variables.merging(["lo": lo, "hi": hi, "all": "true", "buckets": "{}"]) { $1 }))
            case .filtered:
                try c.execute(try onePass.statement(layout.variables.merging(["lo": lo, "hi": hi, "all": "false", "buckets": list]) { $1 }))
            case .byKey:
                try c.execute(try byKey.statement(layout.variables.merging(["lo": lo, "hi": hi, "buckets": list]) { $1 }))
            }
            cells += buckets.count
        }
        let whole: [String: any PostgresEncodable] = ["whole_days": "{" + wholeDays.joined(separator: ",") + "}"]
        let days = try c.query(try QueryFile.named("last_seen_cells_diff.sql").statement(whole)).map { try $0.decode(Date.self, "day") }
        for s in try QueryFile.named("last_seen_cells_store.sql").statements(whole) { try c.execute(s) }
        return (days, cells)
    }

    /// How the changed buckets of one sent day are recounted.
    public enum Mode: Sendable, Equatable {
        /// Every bucket of the day, in one pass (tonight's new day, or most of a day changed).
        case all
        /// The changed buckets, filtered in one pass over the day (Citus, or a large share of it).
        case filtered
        /// The changed buckets, each by an index range scan (a few late reads of an old day, in
        /// conversations that hold a small share of its receipts).
        case byKey
    }

    /// Every cell when the day has no cells yet (tonight's new day) or more than a quarter of
    /// its cells or of its receipts (by the stored delivery counts) changed; otherwise by key
    /// on plain PostgreSQL while the changed cells hold at most a tenth of its receipts (an
    /// index range scan costs several times a sequential read per row), and filtered in one
    /// pass on Citus or above that.
    public static func mode(changedBuckets: Int, changedReceipts: Int64, receipts: Int64, layout: Layout, citus: Bool) -> Mode {
        if receipts == 0 || Int64(changedBuckets) * 4 > layout.cells || changedReceipts * 4 > receipts { return .all }
        if citus || changedReceipts * 10 > receipts { return .filtered }
        return .byKey
    }
}
