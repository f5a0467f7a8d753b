import ChatStorePostgres
import Foundation
import Logging

/// Archive bookkeeping and retention: export + verify + record in `chat.archives`, then detach
/// and drop. A partition is never dropped without a verified archive whose row counts equal the
/// detached tables'; every step is recorded, so a run killed at any step resumes safely.
public struct Retirement {
    public let logger: Logger
    /// How the detach takes the parents' locks: short attempts with back-off (see `ShortLocks`),
    /// so the application's inserts wait at most one attempt's `lock_timeout`.
    public var locks = ShortLocks()
    /// `lock_timeout` of each detach attempt.
    public var lockTimeout: Duration {
        get { locks.lockTimeout }
        set { locks.lockTimeout = newValue }
    }
    /// How long to wait for a range's lock when another command holds it (`RangeLock`).
    public var lockWait: Duration = RangeLock.defaultWait
    public init(logger: Logger) { self.logger = logger }

    /// Steps, in order. `stopAfter` ends a run after one of them (to test resuming).
    public enum Step: String, Codable, Sendable, CaseIterable { case export, verify, detach, drop }

    public struct PartitionResult: Codable, Sendable {
        public var partition: String
        public var path: String
        public var steps: [String]
        public var messages: Int
        public var receipts: Int
    }

    /// Exports (if not already archived and verified), verifies against the database, and records
    /// the archive. Returns the ledger id and the path.
    @discardableResult
    public func archive(_ conn: PostgresConnection, partition: String, directory: String) throws -> (Int64, String, ArchiveVerifier.Report) {
        try RangeLock.with(conn, partition: partition, waiting: lockWait) { try archiveLocked(conn, partition: partition, directory: directory) }
    }

    private func archiveLocked(_ conn: PostgresConnection, partition: String, directory: String,
                               detached: (from: Date, to: Date)? = nil) throws -> (Int64, String, ArchiveVerifier.Report) {
        let exported = try ArchiveExporter(logger: logger).exportLocked(conn, partition: partition, into: directory, detached: detached)
        let (manifest, path) = (exported.manifest, exported.path)
        // The files against the manifest; the manifest's row counts are the server's own counts
        // of the rows it sent in the export's snapshot, so that is the check against the
        // database (a count(*) now would see the writes made since and fail a sound archive).
        var report = try ArchiveVerifier().verify(path: path, connection: nil)
        report.checkedAgainstDatabase = true
        guard report.ok else { throw ArchiveError("archive \(path) failed verification:\n  " + report.problems.joined(separator: "\n  ")) }
        let manifestSHA = SHA256.hash([UInt8](try Data(contentsOf: URL(fileURLWithPath: path + "/manifest.json")))).hex
        let bytes = manifest.files.map(\.bytes).reduce(0, +)
        let rows = manifest.files.filter { $0.content == "messages" || $0.content == "receipts" }.map(\.rows).reduce(0, +)
        let id = try conn.scalar(Int64.self, """
            INSERT INTO chat.archives (parent_table, partition_name, range_start, range_end, path, manifest_sha256, row_count, bytes, verified_at,
                                       detached_at, export_snapshot)
            VALUES ('messages', \(partition), \(manifest.rangeStart)::timestamptz, \(manifest.rangeEnd)::timestamptz, \(path), \(manifestSHA), \(Int64(rows)), \(bytes), now(),
                    \(detached == nil ? nil : PostgresTimestamp.format(Date())), \(exported.snapshot))
            RETURNING archive_id
            """)
        return (id, path, report)
    }

    /// What `retire` would do, changing nothing: one entry per range, with its row counts.
    public struct Planned: Codable, Sendable {
        public var partition: String
        /// The steps a run would take: export and verify (none when a verified archive is already
        /// recorded), detach (when still attached), drop (or keep, with `keepTables`).
        public var steps: [String]
        public var messages: Int
        public var receipts: Int
        /// The verified archive already recorded for the range, if any.
        public var archive: String?
    }

    /// The dry run of `retire(olderThan:)`: which partitions would be archived, detached and
    /// dropped, with their row counts. Reads only.
    public func plan(_ conn: PostgresConnection, olderThan cutoff: Date, keepTables: Bool) throws -> [Planned] {
        let (names, attached) = try candidates(conn, olderThan: cutoff, pm: PartitionManager(logger: logger))
        var out: [Planned] = []
        for name in names {
            let receiptName = "receipts_" + name.dropFirst("messages_".count)
            let archive = try conn.queryOne("""
                SELECT path FROM chat.archives WHERE partition_name = \(name) AND verified_at IS NOT NULL ORDER BY archive_id DESC LIMIT 1
                """).map { try $0.decode(String.self, "path") }
            func count(_ table: String) throws -> Int {
                try conn.scalar(Bool.self, "SELECT to_regclass(\("chat." + table)) IS NOT NULL")
                    ? try conn.scalar(Int.self, SQL(unsafeRaw: "SELECT count(*) FROM chat.\(conn.quoteIdentifier(table))")) : 0
            }
            var steps: [String] = archive == nil ? ["export", "verify"] : []
            if attached.contains(name) { steps.append("detach") }
            steps.append(keepTables ? "keep" : "drop")
            out.append(Planned(partition: name, steps: steps, messages: try count(name), receipts: try count(receiptName), archive: archive))
        }
        return out
    }

    /// Retires every messages partition that ended before `cutoff`, with the receipts partition of
    /// the same range: archive, verify, record, detach, drop (or keep the detached tables).
    public func retire(_ conn: PostgresConnection, olderThan cutoff: Date, directory: String, keepTables: Bool,
                       stopAfter: Step? = nil) throws -> [PartitionResult] {
        let pm = PartitionManager(logger: logger)
        try pm.upkeepLock(conn)
        defer { _ = try? conn.advisoryUnlock(JobRunner.lockKey("partitions")) }
        var results: [PartitionResult] = []
        let (names, attached) = try candidates(conn, olderThan: cutoff, pm: pm)
        let receiptParts = try pm.partitions(conn, parent: "receipts")
        // A range whose detach could not get its locks (a long transaction on the table) is
        // tried again after the others, instead of failing the run at once.
        var later: [String] = []
        for (index, name) in names.enumerated() {
            Progress.report("retire \(name)", done: Int64(index), total: Int64(names.count), unit: "partitions")
            do {
                results.append(try retireUnderLock(conn, name, attached, receiptParts, pm, directory, keepTables, stopAfter))
            } catch let e as LockNotAvailable {
                logger.warning("\(e.what): the table lock is busy; trying it again after the other partitions")
                later.append(name)
            }
        }
        for name in later {
            results.append(try retireUnderLock(conn, name, attached, receiptParts, pm, directory, keepTables, stopAfter))
        }
        return results
    }

    /// One range under its lock, from the first read of its ledger rows to the drop: an export
    /// or restore of the same range waits for it, or is refused (RangeBusy).
    private func retireUnderLock(_ conn: PostgresConnection, _ name: String, _ attached: [String], _ receiptParts: [PartitionManager.Partition],
                                 _ pm: PartitionManager, _ directory: String, _ keepTables: Bool, _ stopAfter: Step?) throws -> PartitionResult {
        try RangeLock.with(conn, partition: name, waiting: lockWait) {
            try retireOne(conn, name: name, attached: attached, receiptParts: receiptParts, pm: pm, directory: directory,
                          keepTables: keepTables, stopAfter: stopAfter)
        }
    }

    /// The ranges a retirement works on, in order: messages partitions still attached that ended
    /// before `cutoff`, and ones a previous run detached but did not drop (`attached` tells which).
    ///
    /// Refused up front, before anything is read or detached, when a messages partition to retire
    /// has no receipts partition of exactly its range while receipts partitions overlap it (the
    /// two tables partitioned by different granularities): a range is retired as whole
    /// partitions of both tables, or not at all.
    private func candidates(_ conn: PostgresConnection, olderThan cutoff: Date, pm: PartitionManager) throws -> (names: [String], attached: [String]) {
        let due = try pm.partitions(conn, parent: "messages").filter { $0.to <= cutoff }
        let receipts = try pm.partitions(conn, parent: "receipts")
        for m in due where !receipts.contains(where: { $0.from == m.from && $0.to == m.to }) {
            if let r = receipts.first(where: { $0.from < m.to && m.from < $0.to }) {
                let g = try pm.configs(conn)
                let mg = g.first { $0.parent == "messages" }?.granularity.rawValue ?? "?"
                let rg = g.first { $0.parent == "receipts" }?.granularity.rawValue ?? "?"
                throw RetireRefused("cannot retire \(m.name): the receipts partition \(r.name) covers [\(PostgresTimestamp.iso8601(r.from)), \(PostgresTimestamp.iso8601(r.to))), "
                    + "not the same range (messages by \(mg), receipts by \(rg)); a range is retired as whole partitions of both tables. Nothing was changed. "
                    + "Give both the same granularity (chatstore partitions configure --table receipts --granularity \(mg)) and retire once the partitions made since then are due")
            }
        }
        let attached = due.map(\.name)
        // Ranges whose current archive (the last verified) says detached and not dropped.
        let pending = try conn.query("""
            SELECT partition_name FROM (
                SELECT DISTINCT ON (partition_name) partition_name, detached_at, dropped_at, restored_at FROM chat.archives
                WHERE parent_table = 'messages' AND verified_at IS NOT NULL ORDER BY partition_name, archive_id DESC) current
            WHERE detached_at IS NOT NULL AND dropped_at IS NULL AND restored_at IS NULL
            """).map { try $0.decode(String.self, at: 0) }
        return ((attached + pending.filter { !attached.contains($0) }).sorted(), attached)
    }

    private func retireOne(_ conn: PostgresConnection, name: String, attached: [String], receiptParts: [PartitionManager.Partition],
                           pm: PartitionManager, directory: String, keepTables: Bool, stopAfter: Step?) throws -> PartitionResult {
        var steps: [String] = []
        let receiptName = "receipts_" + name.dropFirst("messages_".count)
        // 1-2. Archive and verify, unless a verified archive is already recorded and still verifies.
        var path: String
        var archiveID: Int64
        var archived: ArchiveVerifier.Report
        if let row = try conn.queryOne("""
            SELECT archive_id, path FROM chat.archives WHERE partition_name = \(name) AND verified_at IS NOT NULL
            ORDER BY archive_id DESC LIMIT 1
            """), case let report = try ArchiveVerifier().verify(path: try row.decode(String.self, "path"), connection: conn), report.ok {
            archiveID = try row.decode(Int64.self, "archive_id")
            path = try row.decode(String.self, "path")
            archived = report
        } else {
            guard attached.contains(name) else { throw ArchiveError("\(name) is detached but has no archive that verifies; not dropping it") }
            if let p = receiptParts.first(where: { $0.name == receiptName }), let m = try pm.partitions(conn, parent: "messages").first(where: { $0.name == name }),
               p.from != m.from || p.to != m.to {
                throw ArchiveError("\(receiptName) does not cover the same range as \(name); retire needs matching granularity")
            }
            (archiveID, path, archived) = try archive(conn, partition: name, directory: directory)
            steps += ["export", "verify"]
        }
        if stopAfter == .export || stopAfter == .verify {
            return PartitionResult(partition: name, path: path, steps: steps, messages: archived.rows["messages"] ?? 0, receipts: archived.rows["receipts"] ?? 0)
        }
        // 3. Detach both (one transaction, fixed order: messages then receipts).
        if attached.contains(name) {
            try locks.run("detach \(name)", logger: logger) { try conn.transaction { c in
                try c.execute("SELECT set_config('lock_timeout', \(String(locks.lockTimeoutMillis)), true)")
                try c.execute(SQL(unsafeRaw: "ALTER TABLE chat.messages DETACH PARTITION chat.\(c.quoteIdentifier(name))"))
                if try c.scalar(Bool.self, "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(\("chat." + receiptName)))") {
                    try c.execute(SQL(unsafeRaw: "ALTER TABLE chat.receipts DETACH PARTITION chat.\(c.quoteIdentifier(receiptName))"))
                }
                try c.execute("UPDATE chat.archives SET detached_at = now(), dropped_at = NULL, restored_at = NULL WHERE archive_id = \(archiveID)")
                // The detached messages are no longer unread.
                let range = try c.queryOne("SELECT range_start, range_end FROM chat.archives WHERE archive_id = \(archiveID)")!
                let from = PostgresTimestamp.format(try range.decode(Date.self, "range_start"))
                let to = PostgresTimestamp.format(try range.decode(Date.self, "range_end"))
                for s in try QueryFile.named("unread_retire.sql").statements(["from": from, "to": to]) { try c.execute(s) }
                // Nor counted by the last-seen rollup's receipt cells: a restore writes them
                // again, and the rollup then recomputes the days they count on.
                try c.execute("""
                    DELETE FROM chat.last_seen_cells
                    WHERE sent_day >= (\(from)::timestamptz AT TIME ZONE 'UTC')::date AND sent_day < (\(to)::timestamptz AT TIME ZONE 'UTC')::date
                    """)
            } }
            steps.append("detach")
        }
        if stopAfter == .detach {
            return PartitionResult(partition: name, path: path, steps: steps, messages: archived.rows["messages"] ?? 0, receipts: archived.rows["receipts"] ?? 0)
        }
        // 4. The detached tables can no longer change. What was written to the range after the
        //    archive was read (a late read, a deletion, rows a restore brought back and the
        //    application changed since) makes the archive stale: a new one is written from the
        //    detached tables, beside the old one, and becomes current once verified.
        func counts() throws -> (Int, Int) {   // of the detached tables, which no longer change
            let m = try conn.scalar(Int.self, SQL(unsafeRaw: "SELECT count(*) FROM chat.\(conn.quoteIdentifier(name))"))
            let r = try conn.scalar(Bool.self, "SELECT to_regclass(\("chat." + receiptName)) IS NOT NULL")
                ? try conn.scalar(Int.self, SQL(unsafeRaw: "SELECT count(*) FROM chat.\(conn.quoteIdentifier(receiptName))")) : 0
            return (m, r)
        }
        let (m, r) = try counts()
        if try isStale(conn, archiveID: archiveID, messagesTable: name, receiptsTable: receiptName, counts: (m, r), archived: archived) {
            let range = try conn.queryOne("SELECT range_start, range_end FROM chat.archives WHERE archive_id = \(archiveID)")!
            (archiveID, path, archived) = try archiveLocked(conn, partition: name, directory: directory,
                                                            detached: (try range.decode(Date.self, "range_start"), try range.decode(Date.self, "range_end")))
            steps += ["re-export", "verify"]
        }
        // 5. Drop, only if the detached tables hold exactly what the current archive holds.
        guard archived.ok, m == archived.rows["messages"], r == archived.rows["receipts"] else {
            throw ArchiveError("\(name): detached tables hold \(m) messages and \(r) receipts, the archive \(archived.rows); not dropping")
        }
        if !keepTables {
            try conn.transaction { c in
                try c.execute(SQL(unsafeRaw: "DROP TABLE IF EXISTS chat.\(c.quoteIdentifier(receiptName))"))
                try c.execute(SQL(unsafeRaw: "DROP TABLE chat.\(c.quoteIdentifier(name))"))
                // The range is dropped: its current archive, and an older one of the range that a
                // re-export superseded after this run's detach, are both recorded as such.
                try c.execute("""
                    UPDATE chat.archives SET dropped_at = now(), restored_at = NULL
                    WHERE archive_id = \(archiveID) OR (partition_name = \(name) AND detached_at IS NOT NULL AND dropped_at IS NULL)
                    """)
            }
            steps.append("drop")
        }
        return PartitionResult(partition: name, path: path, steps: steps, messages: m, receipts: r)
    }
}

extension Retirement {
    /// Whether the archive `archiveID` no longer holds what the detached tables hold: a row
    /// count differs, or a row was written by a transaction its export's snapshot did not see
    /// (`change_xid`, as the incremental jobs find changes; docs/archive-format.md). An archive from
    /// before the ledger recorded snapshots is stale once its range was restored.
    func isStale(_ conn: PostgresConnection, archiveID: Int64, messagesTable: String, receiptsTable: String,
                 counts: (Int, Int), archived: ArchiveVerifier.Report) throws -> Bool {
        if counts.0 != archived.rows["messages"] || counts.1 != archived.rows["receipts"] { return true }
        let row = try conn.queryOne("SELECT export_snapshot, restored_at IS NOT NULL AS restored FROM chat.archives WHERE archive_id = \(archiveID)")!
        guard let snapshot = try row.decode(String?.self, "export_snapshot") else { return try row.decode(Bool.self, "restored") }
        for table in [messagesTable, receiptsTable] where try conn.scalar(Bool.self, "SELECT to_regclass(\("chat." + table)) IS NOT NULL") {
            let changed = try conn.scalar(Bool.self, """
                SELECT EXISTS (SELECT 1 FROM \(qualified: "chat", table)
                               WHERE change_xid >= pg_snapshot_xmin(\(snapshot)::pg_snapshot)::text::bigint
                                 AND NOT pg_visible_in_snapshot(change_xid::text::xid8, \(snapshot)::pg_snapshot))
                """)
            if changed { return true }
        }
        return false
    }
}

/// A retirement refused before it changed anything (a configuration it cannot retire).
public struct RetireRefused: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
