import ChatStorePostgres
import Foundation
import Logging

/// Keeps the time-partitioned tables covered: premakes partitions, reports coverage and rows
/// stranded in DEFAULT partitions, and moves such rows into proper partitions.
///
/// Every step runs in its own short transaction with `lock_timeout`, retried on lock timeouts
/// and deadlocks. Locks are always taken in one order: tables by `chat.partition_config.lock_order`,
/// and within a table the parent, then its DEFAULT partition, then the new partition. New
/// partitions are created as plain tables and ATTACHed, which takes only SHARE UPDATE EXCLUSIVE on
/// the parent, so the application's inserts and reads are not blocked.
public struct PartitionManager: Sendable {
    public let logger: Logger
    /// How long to wait for another upkeep run (ensure, repair-default, retire) to finish.
    public var lockWait: Duration = .seconds(300)
    /// How steps take the parent's lock: short attempts with back-off (see `ShortLocks`).
    public var locks = ShortLocks()
    /// `lock_timeout` of each attempt (the longest an application query waits behind one).
    public var lockTimeout: Duration {
        get { locks.lockTimeout }
        set { locks.lockTimeout = newValue }
    }
    /// Coverage below this many intervals ahead is reported as low (exit code 4).
    public var minimumAhead = 2
    /// The schema holding the tables.
    public static let schema = "chat"

    public init(logger: Logger) { self.logger = logger }

    /// One partitioned table's configuration.
    public struct TableConfig: Codable, Sendable {
        public var parent: String
        public var granularity: PartitionGranularity
        public var premake: Int
        public var retention: String?
        public var partitionColumn: String
    }

    /// One partition.
    public struct Partition: Codable, Sendable {
        public var name: String
        public var from: Date
        public var to: Date
        public var bytes: Int64
        public var estimatedRows: Int64
    }

    /// Reads `chat.partition_config` in lock order.
    public func configs(_ conn: PostgresConnection) throws -> [TableConfig] {
        try conn.query("""
            SELECT c.parent_table, c.granularity, c.premake, c.retention::text AS retention,
                   (SELECT a.attname FROM pg_partitioned_table p
                      JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
                     WHERE p.partrelid = ('chat.' || quote_ident(c.parent_table))::regclass) AS column_name
            FROM chat.partition_config c ORDER BY c.lock_order
            """).map { row in
            let g = try row.decode(String.self, "granularity")
            return TableConfig(parent: try row.decode(String.self, "parent_table"),
                               granularity: PartitionGranularity(rawValue: g) ?? .day,
                               premake: try row.decode(Int.self, "premake"),
                               retention: try row.decode(String?.self, "retention"),
                               partitionColumn: try row.decode(String.self, "column_name"))
        }
    }

    /// The non-default partitions of a table, by range. Sizes and row estimates are the
    /// catalog's; on Citus those of the coordinator's empty shells unless `shards` (read once by
    /// the caller for all tables) gives the shards' own.
    public func partitions(_ conn: PostgresConnection, parent: String) throws -> [Partition] {
        try partitions(conn, parent: parent, shards: nil)
    }

    func partitions(_ conn: PostgresConnection, parent: String, shards: CitusShardStatistics?) throws -> [Partition] {
        let rows = try conn.query("""
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound,
                   pg_total_relation_size(c.oid) AS bytes, greatest(c.reltuples, 0)::bigint AS est
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass(\(PartitionManager.schema + "." + parent))
            """)
        var out: [Partition] = []
        for row in rows {
            let bound = try row.decode(String.self, "bound")
            guard bound != "DEFAULT" else { continue }
            let quoted = bound.split(separator: "'", omittingEmptySubsequences: false)
            guard quoted.count >= 4, let from = PostgresTimestamp.parse(String(quoted[1])),
                  let to = PostgresTimestamp.parse(String(quoted[3])) else {
                throw PartitionError("cannot read the bounds of partition \(try row.decode(String.self, "relname")): \(bound)")
            }
            let name = try row.decode(String.self, "relname")
            let bytes = try row.decode(Int64.self, "bytes"), estimate = try row.decode(Int64.self, "est")
            out.append(Partition(name: name, from: from, to: to,
                                 bytes: shards?.bytes[name] ?? bytes, estimatedRows: shards?.rows[name] ?? estimate))
        }
        return out.sorted { $0.from < $1.from }
    }

    // MARK: - ensure

    /// What `ensure` did.
    public struct EnsureReport: Codable, Sendable {
        public var created: [String]
        public var movedFromDefault: [String: Int]
        public var status: StatusReport
    }

    /// Premakes partitions so that each table is covered from the current interval through
    /// `ahead` intervals (default: the table's `premake`). Idempotent. Rows already sitting in the
    /// DEFAULT partition for a new range are moved into it in the same transaction.
    public func ensure(_ conn: PostgresConnection, ahead: Int? = nil, now: Date = Date()) throws -> EnsureReport {
        let ledger = JobLedger()
        try upkeepLock(conn)
        defer { _ = try? conn.advisoryUnlock(JobRunner.lockKey("partitions")) }
        let run = try ledger.start("partitions.ensure", on: conn)
        var created: [String] = []
        var moved: [String: Int] = [:]
        do {
            for cfg in try configs(conn) {
                let horizon = (0..<(ahead ?? cfg.premake)).reduce(cfg.granularity.next(now)) { d, _ in cfg.granularity.next(d) }
                for (from, to) in try gaps(conn, cfg, from: cfg.granularity.floor(now), until: horizon) {
                    let (name, n) = try createPartition(conn, cfg, from: from, to: to)
                    created.append(name)
                    if n > 0 { moved[name] = n }
                }
            }
            try ledger.finish(run, succeeded: true, statsJSON: jsonText(["created": created.count, "moved_rows": moved.values.reduce(0, +)]), on: conn)
            let st = try status(conn, now: now)
            return EnsureReport(created: created, movedFromDefault: moved, status: st)
        } catch {
            try? ledger.finish(run, succeeded: false, error: String(describing: error), on: conn)
            throw error
        }
    }

    /// Creates partitions so that every table covers [from, until) (for loading historical data).
    /// - Returns: the partitions created.
    @discardableResult
    public func ensureRange(_ conn: PostgresConnection, from: Date, until: Date) throws -> [String] {
        var created: [String] = []
        for cfg in try configs(conn) {
            for (a, b) in try gaps(conn, cfg, from: cfg.granularity.floor(from), until: until) {
                created.append(try createPartition(conn, cfg, from: a, to: b).0)
            }
        }
        return created
    }

    /// Makes sure `parent` has a partition of exactly [from, to) (restore: an archive's range,
    /// whatever granularity the table is configured with now), creating it when no partition
    /// overlaps the range. Refused when another partition overlaps it (the range cannot be
    /// restored as one partition), or when a table of its name exists but is not attached (a
    /// retirement in progress).
    /// - Returns: the partition's name, and whether this call created it.
    public func ensureExactly(_ conn: PostgresConnection, parent: String, from: Date, to: Date) throws -> (name: String, created: Bool) {
        let existing = try partitions(conn, parent: parent)
        if let p = existing.first(where: { $0.from == from && $0.to == to }) { return (p.name, false) }
        let range = "[\(PostgresTimestamp.iso8601(from)), \(PostgresTimestamp.iso8601(to)))"
        if let o = existing.first(where: { $0.from < to && from < $0.to }) {
            throw PartitionError("chat.\(o.name) covers [\(PostgresTimestamp.iso8601(o.from)), \(PostgresTimestamp.iso8601(o.to))), which overlaps \(range) without being it: "
                + "the range cannot be restored as its own partition of \(parent). Nothing was changed")
        }
        let name = "\(parent)_\(PartitionGranularity.suffix(from))"
        if try conn.scalar(Bool.self, "SELECT to_regclass(\(PartitionManager.schema + "." + name)) IS NOT NULL") {
            throw PartitionError("chat.\(name) exists but is not attached to chat.\(parent) (a retirement not finished?): run `chatstore partitions retire` to finish it, then restore. Nothing was changed")
        }
        guard let cfg = try configs(conn).first(where: { $0.parent == parent }) else { throw PartitionError("no partitioned table named \(parent) in chat.partition_config") }
        return (try createPartition(conn, cfg, from: from, to: to).0, true)
    }

    /// Takes the partition-upkeep lock without waiting (`JobBusy` when held) and marks upkeep runs
    /// left 'running' by a dead process as interrupted. The caller releases the lock.
    func upkeepLock(_ conn: PostgresConnection) throws {
        // Another upkeep run (a retire started by hand while nightly runs, say) is waited for,
        // up to `lockWait`, then refused naming its holder (exit 3).
        try JobRunner.acquire(JobRunner.lockKey("partitions"), job: "partitions", on: conn, waiting: lockWait)
        try JobLedger().markInterrupted(["partitions.ensure", "partitions.repair-default"], on: conn)
    }

    /// The uncovered ranges in [from, until), cut at interval boundaries and existing partitions.
    func gaps(_ conn: PostgresConnection, _ cfg: TableConfig, from: Date, until: Date) throws -> [(Date, Date)] {
        let existing = try partitions(conn, parent: cfg.parent)
        var out: [(Date, Date)] = []
        var cursor = from
        while cursor < until {
            if let p = existing.first(where: { $0.from <= cursor && cursor < $0.to }) {
                cursor = p.to
                continue
            }
            var end = cfg.granularity.next(cursor)
            if let nextStart = existing.map(\.from).filter({ $0 > cursor }).min(), nextStart < end { end = nextStart }
            out.append((cursor, end))
            cursor = end
        }
        return out
    }

    /// Creates one partition as a plain table and attaches it, moving any rows for its range out
    /// of the DEFAULT partition in the same transaction.
    /// - Returns: the partition name and the number of rows moved.
    func createPartition(_ conn: PostgresConnection, _ cfg: TableConfig, from: Date, to: Date) throws -> (String, Int) {
        let schema = PartitionManager.schema
        var name = "\(cfg.parent)_\(PartitionGranularity.suffix(from))"
        if try conn.scalar(Bool.self, "SELECT to_regclass(\(schema + "." + name)) IS NOT NULL") {
            name += "_\(Int(from.timeIntervalSince1970))"
        }
        let parent = "\(conn.quoteIdentifier(schema)).\(conn.quoteIdentifier(cfg.parent))"
        let def = "\(conn.quoteIdentifier(schema)).\(conn.quoteIdentifier(cfg.parent + "_default"))"
        let child = "\(conn.quoteIdentifier(schema)).\(conn.quoteIdentifier(name))"
        let col = conn.quoteIdentifier(cfg.partitionColumn)
        let lo = PostgresTimestamp.format(from), hi = PostgresTimestamp.format(to)
        let hasDefault = try conn.scalar(Bool.self, "SELECT to_regclass(\(schema + "." + cfg.parent + "_default")) IS NOT NULL")
        // Only the tables' owner may create and attach partitions (PostgreSQL's rule): say so,
        // and who that is, instead of "permission denied for schema chat".
        if let owner = try conn.queryOne("""
            SELECT pg_get_userbyid(c.relowner) AS owner FROM pg_class c
            WHERE c.oid = to_regclass(\(schema + "." + cfg.parent)) AND NOT pg_has_role(current_user, c.relowner, 'USAGE')
            """) {
            let o = try owner.decode(String.self, "owner")
            throw PartitionError("creating partition \(name) needs the rights of the tables' owner, \(o) (only an owner may create, attach and detach partitions): run partition upkeep and nightly as \(o) or a role it is granted to (GRANT \(o) TO <login>); chatstore_batch alone runs the jobs commands")
        }
        let moved = try withRetries("create \(name)") {
            try conn.transaction { c in
                try c.execute("SELECT set_config('lock_timeout', \(String(lockTimeoutMillis)), true)")
                try c.execute(SQL(unsafeRaw: "LOCK TABLE \(parent) IN SHARE UPDATE EXCLUSIVE MODE"))
                var n = 0
                try c.execute(SQL(unsafeRaw: "CREATE TABLE \(child) (LIKE \(parent) INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"))
                try c.execute(SQL(unsafeRaw: """
                    ALTER TABLE \(child) ADD CONSTRAINT \(c.quoteIdentifier(name + "_range"))
                    CHECK (\(col) IS NOT NULL AND \(col) >= '\(lo)' AND \(col) < '\(hi)')
                    """))
                if hasDefault {
                    let stranded = try c.scalar(Bool.self, SQL(unsafeRaw: "SELECT EXISTS (SELECT 1 FROM \(def) WHERE \(col) >= '\(lo)' AND \(col) < '\(hi)')"))
                    if stranded {
                        try c.execute(SQL(unsafeRaw: "LOCK TABLE \(def) IN ACCESS EXCLUSIVE MODE"))
                        let inserted = try c.execute(SQL(unsafeRaw: "INSERT INTO \(child) SELECT * FROM \(def) WHERE \(col) >= '\(lo)' AND \(col) < '\(hi)'")).affectedRows
                        let deleted = try c.execute(SQL(unsafeRaw: "DELETE FROM \(def) WHERE \(col) >= '\(lo)' AND \(col) < '\(hi)'")).affectedRows
                        guard inserted == deleted else {
                            throw PartitionError("moving rows of \(name) out of \(cfg.parent)_default: copied \(inserted) but removed \(deleted); rolled back")
                        }
                        n = inserted
                    }
                }
                try c.execute(SQL(unsafeRaw: "ALTER TABLE \(parent) ATTACH PARTITION \(child) FOR VALUES FROM ('\(lo)') TO ('\(hi)')"))
                return n
            }
        }
        logger.debug("created partition \(schema).\(name) [\(lo), \(hi))\(moved > 0 ? ", moved \(moved) rows from the default partition" : "")")
        return (name, moved)
    }

    var lockTimeoutMillis: Int { locks.lockTimeoutMillis }

    func withRetries<T>(_ what: String, _ body: () throws -> T) throws -> T {
        try locks.run(what, logger: logger, body)
    }

    // MARK: - repair-default

    /// What `repairDefault` moved, per new partition.
    public struct RepairReport: Codable, Sendable {
        public var moved: [String: Int]
        public var remainingInDefault: [String: Int]
    }

    /// Moves every row out of the DEFAULT partitions into proper partitions (created as needed),
    /// one transaction per target partition; rows are never lost or duplicated: each is copied and
    /// deleted in the same transaction, and the counts must match.
    public func repairDefault(_ conn: PostgresConnection) throws -> RepairReport {
        let ledger = JobLedger()
        try upkeepLock(conn)
        defer { _ = try? conn.advisoryUnlock(JobRunner.lockKey("partitions")) }
        let run = try ledger.start("partitions.repair-default", on: conn)
        var moved: [String: Int] = [:]
        do {
            for cfg in try configs(conn) {
                let def = "\(conn.quoteIdentifier(PartitionManager.schema)).\(conn.quoteIdentifier(cfg.parent + "_default"))"
                let col = conn.quoteIdentifier(cfg.partitionColumn)
                let starts = try conn.query(SQL(unsafeRaw: """
                    SELECT DISTINCT date_trunc('\(cfg.granularity.rawValue)', \(col)) AS s FROM \(def) ORDER BY 1
                    """)).map { try $0.decode(Date.self, "s") }
                for s in starts {
                    for (from, to) in try gaps(conn, cfg, from: s, until: cfg.granularity.next(s)) {
                        let (name, n) = try createPartition(conn, cfg, from: from, to: to)
                        moved[name] = n
                    }
                }
            }
            let remaining = try defaultRows(conn)
            try ledger.finish(run, succeeded: true, statsJSON: jsonText(["moved_rows": moved.values.reduce(0, +)]), on: conn)
            return RepairReport(moved: moved, remainingInDefault: remaining)
        } catch {
            try? ledger.finish(run, succeeded: false, error: String(describing: error), on: conn)
            throw error
        }
    }

    func defaultRows(_ conn: PostgresConnection) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for cfg in try configs(conn) {
            let def = "\(conn.quoteIdentifier(PartitionManager.schema)).\(conn.quoteIdentifier(cfg.parent + "_default"))"
            out[cfg.parent] = try conn.scalar(Int.self, SQL(unsafeRaw: "SELECT count(*) FROM \(def)"))
        }
        return out
    }

    // MARK: - status

    /// One table's coverage.
    public struct TableStatus: Codable, Sendable {
        public var table: String
        public var granularity: PartitionGranularity
        public var premake: Int
        public var partitions: [Partition]
        /// End of contiguous coverage starting at the current interval (nil: current interval not covered).
        public var coveredUntil: Date?
        /// Whole intervals covered after the current one.
        public var intervalsAhead: Int
        public var rowsInDefault: Int
        public var totalBytes: Int64
    }

    /// Coverage of every table, and what is wrong.
    public struct StatusReport: Codable, Sendable {
        public var tables: [TableStatus]
        public var lastSuccessfulUpkeep: Date?
        public var warnings: [String]
        public var healthy: Bool { warnings.isEmpty }
    }

    /// Reports partitions, coverage ahead, rows in DEFAULT partitions and the last upkeep.
    public func status(_ conn: PostgresConnection, now: Date = Date()) throws -> StatusReport {
        var tables: [TableStatus] = []
        var warnings: [String] = []
        let inDefault = try defaultRows(conn)
        // On Citus the coordinator's partitions are empty shells: sizes and row estimates come
        // from the shards, read once for every table (two queries, not one per partition).
        let shards = try CitusPlan.isAvailable(conn) ? try CitusShardStatistics(conn) : nil
        for cfg in try configs(conn) {
            let parts = try partitions(conn, parent: cfg.parent, shards: shards)
            var cursor = cfg.granularity.floor(now)
            var covered: Date?
            while let p = parts.first(where: { $0.from <= cursor && cursor < $0.to }) {
                cursor = p.to
                covered = p.to
            }
            var ahead = 0
            if let covered {
                var d = cfg.granularity.next(now)
                while cfg.granularity.next(d) <= covered { ahead += 1; d = cfg.granularity.next(d) }
            }
            let rows = inDefault[cfg.parent] ?? 0
            if covered == nil {
                warnings.append("\(cfg.parent): the current \(cfg.granularity.rawValue) has no partition; new rows land in \(cfg.parent)_default. Run `chatstore partitions ensure`.")
            } else if ahead < minimumAhead {
                warnings.append("\(cfg.parent): only \(ahead) \(cfg.granularity.rawValue)(s) of partitions ahead (minimum \(minimumAhead)); coverage ends \(PostgresTimestamp.format(covered!)). Run `chatstore partitions ensure`.")
            }
            if rows > 0 {
                warnings.append("\(cfg.parent): \(rows) rows in \(cfg.parent)_default. Run `chatstore partitions repair-default`.")
            }
            tables.append(TableStatus(table: cfg.parent, granularity: cfg.granularity, premake: cfg.premake, partitions: parts,
                                      coveredUntil: covered, intervalsAhead: ahead, rowsInDefault: rows,
                                      totalBytes: parts.map(\.bytes).reduce(0, +)))
        }
        warnings += try hiddenState(conn)
        let last = try JobLedger().lastSuccess("partitions.ensure", on: conn)
        return StatusReport(tables: tables, lastSuccessfulUpkeep: last, warnings: warnings)
    }

    /// What must not stay hidden: partition tables that are attached to nothing (the application
    /// cannot see their rows), and archive ledger rows that contradict the catalog. One line each,
    /// saying what to run.
    func hiddenState(_ conn: PostgresConnection) throws -> [String] {
        var out: [String] = []
        // Tables named like partitions of the partitioned tables but attached to none.
        for row in try conn.query("""
            SELECT c.relname, (SELECT count(*) FROM chat.archives a WHERE a.partition_name = c.relname
                                                                   OR 'receipts_' || substr(a.partition_name, 10) = c.relname) AS ledger
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'chat' AND c.relkind = 'r' AND NOT c.relispartition
              AND c.relname ~ '^(messages|receipts|presence_events)_p[0-9]{8}$'
            ORDER BY 1
            """) {
            let name = try row.decode(String.self, "relname")
            let known = try row.decode(Int.self, "ledger") > 0
            out.append("chat.\(name) is detached: its rows are invisible to the application\(known ? " (the archive ledger knows its range)" : " and the archive ledger does not know it"). Run `chatstore partitions retire` to finish a retirement, or reattach it (ALTER TABLE ... ATTACH PARTITION).")
        }
        // Ledger rows that say dropped or detached while the partition is attached again (a
        // restore), or detached while the table is gone.
        for row in try conn.query("""
            SELECT a.partition_name, a.archive_id,
                   EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = to_regclass('chat.' || a.partition_name)) AS attached,
                   to_regclass('chat.' || a.partition_name) IS NOT NULL AS present,
                   a.dropped_at IS NOT NULL AS dropped, a.detached_at IS NOT NULL AS detached
            FROM chat.archives a
            WHERE a.archive_id = (SELECT max(b.archive_id) FROM chat.archives b WHERE b.partition_name = a.partition_name)
              AND (a.dropped_at IS NOT NULL OR a.detached_at IS NOT NULL) AND a.restored_at IS NULL
            ORDER BY 1
            """) {
            let name = try row.decode(String.self, "partition_name")
            let attached = try row.decode(Bool.self, "attached"), present = try row.decode(Bool.self, "present")
            let dropped = try row.decode(Bool.self, "dropped")
            if attached {
                out.append("chat.archives says \(name) was \(dropped ? "dropped" : "detached") (archive \(try row.decode(Int64.self, "archive_id"))), but the partition is attached (restored?): its rows are live and archived. Retire it again or export it to record its state.")
            } else if !present && !dropped {
                out.append("chat.archives says \(name) is detached, but the table is gone and the drop is not recorded. Run `chatstore partitions retire` or check the archive with `chatstore archive verify`.")
            }
        }
        return out
    }

    /// Changes a table's granularity or premake count (applies to partitions created from now on).
    public func configure(_ conn: PostgresConnection, table: String, granularity: PartitionGranularity?, premake: Int?) throws {
        let n = try conn.execute("""
            UPDATE chat.partition_config SET granularity = coalesce(\(granularity?.rawValue), granularity),
                   premake = coalesce(\(premake.map { Int64($0) }), premake)
            WHERE parent_table = \(table)
            """).affectedRows
        if n == 0 { throw PartitionError("no partitioned table named \(table) in chat.partition_config") }
    }
}

/// A partition upkeep failure.
public struct PartitionError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
