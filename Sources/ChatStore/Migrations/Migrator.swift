import ChatStorePostgres
import Foundation
import Logging

/// Applies versioned migrations under a session-level advisory lock.
///
/// - The lock is taken outside any transaction, so `CREATE INDEX CONCURRENTLY` steps can run
///   while it is held; a second migrator waits for it (bounded by `lockWait`), then finds nothing
///   left to do.
/// - Each transactional migration runs in its own transaction: a failure leaves the database at
///   the previous version and names the file, line, statement and SQLSTATE.
/// - Applied checksums are compared with the files: an edited migration, or a version the binary
///   does not know, is refused before anything runs.
/// - Non-transactional migrations record each completed statement; a rerun resumes after the last
///   one, and an index left INVALID by a failed concurrent build is dropped and rebuilt.
///
/// ```swift
/// let migrator = try Migrator(migrations: Migration.embedded(), logger: logger)
/// let report = try migrator.migrate(connection: conn)
/// ```
public struct Migrator: Sendable {
    public let migrations: [Migration]
    public let logger: Logger
    /// The advisory lock every chatstore migrator takes.
    public static let lockKey = AdvisoryLockKey("chatstore.migrate")
    /// How long to wait for another migrator's lock.
    public var lockWait: Duration = .seconds(300)
    /// `lock_timeout` for each statement (table locks), so a migration never queues behind a long
    /// transaction while blocking the application's queries behind itself.
    public var statementLockTimeout: Duration = .seconds(10)

    /// - Throws: `MigrationError.duplicateVersion` when two files share a version.
    public init(migrations: [Migration], logger: Logger) throws {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.version == b.version {
            throw MigrationError.duplicateVersion(a.version, a.fileName, b.fileName)
        }
        self.migrations = sorted
        self.logger = logger
    }

    /// A migration's state in a database.
    public struct Entry: Codable, Sendable {
        public var version: Int
        public var file: String
        public var checksum: String
        public var state: String          // applied, pending, partial (resumable), changed, unknown
        public var appliedAt: Date?
        public var recordedChecksum: String?
        public var transactional: Bool
        public var stepsDone: Int?
        public var steps: Int
    }

    /// Applied and pending migrations.
    public struct Status: Codable, Sendable {
        public var currentVersion: Int
        public var latestVersion: Int
        public var planChecksum: String
        public var entries: [Entry]
        public var pending: [Int] { entries.filter { $0.state == "pending" || $0.state == "partial" }.map(\.version) }
        public var problems: [String]
    }

    /// What `migrate` did.
    public struct Report: Codable, Sendable {
        public var applied: [Int]
        public var resumed: [Int]
        public var fromVersion: Int
        public var toVersion: Int
        public var seconds: Double
    }

    // MARK: - History

    static let historyDDL = """
        CREATE SCHEMA IF NOT EXISTS chat;
        CREATE TABLE IF NOT EXISTS chat.schema_migrations (
            version       integer PRIMARY KEY,
            file          text NOT NULL,
            checksum      text NOT NULL,
            transactional boolean NOT NULL,
            completed     boolean NOT NULL,
            applied_at    timestamptz NOT NULL DEFAULT now(),
            duration_ms   bigint,
            applied_by    text NOT NULL DEFAULT current_user,
            tool_version  text NOT NULL
        );
        CREATE TABLE IF NOT EXISTS chat.schema_migration_steps (
            version       integer NOT NULL REFERENCES chat.schema_migrations (version),
            step          integer NOT NULL,
            line          integer NOT NULL,
            completed_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (version, step)
        )
        """

    struct Recorded {
        var version: Int
        var file: String
        var checksum: String
        var completed: Bool
        var appliedAt: Date
        var stepsDone: Int
    }

    func recorded(_ conn: PostgresConnection) throws -> [Int: Recorded] {
        let exists = try conn.scalar(Bool.self, "SELECT to_regclass('chat.schema_migrations') IS NOT NULL")
        guard exists else { return [:] }
        var out: [Int: Recorded] = [:]
        for row in try conn.query("""
            SELECT m.version, m.file, m.checksum, m.completed, m.applied_at,
                   (SELECT count(*) FROM chat.schema_migration_steps s WHERE s.version = m.version) AS steps
            FROM chat.schema_migrations m ORDER BY m.version
            """) {
            let v = try row.decode(Int.self, "version")
            out[v] = Recorded(version: v, file: try row.decode(String.self, "file"), checksum: try row.decode(String.self, "checksum"),
                              completed: try row.decode(Bool.self, "completed"), appliedAt: try row.decode(Date.self, "applied_at"),
                              stepsDone: try row.decode(Int.self, "steps"))
        }
        return out
    }

    /// Reads the database's migration state without changing anything.
    public func status(connection conn: PostgresConnection) throws -> Status {
        let rec = try recorded(conn)
        var entries: [Entry] = []
        var problems: [String] = []
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for m in migrations {
            var e = Entry(version: m.version, file: m.fileName, checksum: m.checksum, state: "pending", appliedAt: nil,
                          recordedChecksum: nil, transactional: m.isTransactional, stepsDone: nil, steps: m.statements.count)
            if let r = rec[m.version] {
                e.appliedAt = r.appliedAt
                e.recordedChecksum = r.checksum
                e.stepsDone = m.isTransactional ? nil : r.stepsDone
                if r.checksum != m.checksum {
                    e.state = "changed"
                    problems.append(MigrationError.checksumMismatch(version: m.version, file: m.fileName, recorded: r.checksum, current: m.checksum).description)
                } else {
                    e.state = r.completed ? "applied" : "partial"
                }
            }
            entries.append(e)
        }
        for (v, r) in rec.sorted(by: { $0.key < $1.key }) where known[v] == nil {
            entries.append(Entry(version: v, file: r.file, checksum: r.checksum, state: "unknown", appliedAt: r.appliedAt,
                                 recordedChecksum: r.checksum, transactional: true, stepsDone: nil, steps: 0))
            problems.append(MigrationError.unknownVersion(version: v, name: r.file).description)
        }
        let current = rec.values.filter(\.completed).map(\.version).max() ?? 0
        return Status(currentVersion: current, latestVersion: migrations.last?.version ?? 0,
                      planChecksum: Migration.planChecksum(migrations), entries: entries, problems: problems)
    }

    /// The migrations that `migrate(to:)` would run, in order (resumable ones first).
    public func plan(connection conn: PostgresConnection, to target: Int? = nil) throws -> [Migration] {
        let rec = try recorded(conn)
        try validate(rec)
        if let target, !migrations.contains(where: { $0.version == target }) { throw MigrationError.unknownTarget(target) }
        return migrations.filter { m in
            if let target, m.version > target { return false }
            if let r = rec[m.version] { return !r.completed }
            return true
        }
    }

    func validate(_ rec: [Int: Recorded]) throws {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (v, r) in rec.sorted(by: { $0.key < $1.key }) {
            guard let m = known[v] else { throw MigrationError.unknownVersion(version: v, name: r.file) }
            if m.checksum != r.checksum {
                throw MigrationError.checksumMismatch(version: v, file: m.fileName, recorded: r.checksum, current: m.checksum)
            }
        }
    }

    // MARK: - Applying

    /// Applies pending migrations up to `target` (all when nil).
    /// - Throws: `MigrationError` (refusals, the failing statement), `PostgresError` (connection).
    @discardableResult
    public func migrate(connection conn: PostgresConnection, to target: Int? = nil,
                        progress: ((Migration, Int, Int) -> Void)? = nil) throws -> Report {
        let started = Date()
        // Wait by polling pg_try_advisory_lock between short sleeps, never inside a blocking
        // pg_advisory_lock call: a waiting statement holds a snapshot, and the holder's
        // CREATE INDEX CONCURRENTLY waits for every such snapshot to end, a deadlock.
        let deadline = Date().addingTimeInterval(Double(lockWait.components.seconds))
        try waitForLock(conn, deadline: deadline)
        defer { _ = try? conn.advisoryUnlock(Migrator.lockKey) }
        try conn.setTimeouts(lock: statementLockTimeout)

        if try recorded(conn).isEmpty, let table = try Migrator.tablesCreated(by: migrations).first(where: { try conn.scalar(Bool.self, "SELECT to_regclass(\($0.0)) IS NOT NULL") }) {
            throw MigrationError.refused("the database has chatstore tables (\(table.0)) but no migration history, so migrate would create them again: adopt it with `chatstore migrate baseline --version N`, N being the version its schema is at")
        }
        try conn.executeScript(Migrator.historyDDL)
        let before = try status(connection: conn).currentVersion
        let todo = try plan(connection: conn, to: target)
        var applied: [Int] = [], resumed: [Int] = []
        let rec = try recorded(conn)
        for m in todo {
            let t0 = Date()
            if m.isTransactional {
                logger.info("applying \(m.fileName)")
                try conn.transaction { c in
                    for (i, s) in m.statements.enumerated() {
                        progress?(m, i, m.statements.count)
                        Progress.report("migrate: \(m.fileName)", done: Int64(i), total: Int64(m.statements.count), unit: "statements")
                        try run(s, of: m, on: c)
                    }
                    try c.execute("""
                        INSERT INTO chat.schema_migrations (version, file, checksum, transactional, completed, duration_ms, tool_version)
                        VALUES (\(m.version), \(m.fileName), \(m.checksum), true, true, \(Int(Date().timeIntervalSince(t0) * 1000)), \(ChatStoreVersion.string))
                        """)
                }
                applied.append(m.version)
            } else {
                let done = rec[m.version]?.stepsDone ?? 0
                if rec[m.version] == nil {
                    try conn.execute("""
                        INSERT INTO chat.schema_migrations (version, file, checksum, transactional, completed, tool_version)
                        VALUES (\(m.version), \(m.fileName), \(m.checksum), false, false, \(ChatStoreVersion.string))
                        """)
                    logger.info("applying \(m.fileName) step by step (\(m.statements.count) statements, no transaction)")
                } else {
                    logger.info("resuming \(m.fileName) after step \(done) of \(m.statements.count)")
                    resumed.append(m.version)
                }
                for (i, s) in m.statements.enumerated() where i >= done {
                    progress?(m, i, m.statements.count)
                    Progress.report("migrate: \(m.fileName)", done: Int64(i), total: Int64(m.statements.count), unit: "statements")
                    try dropInvalidIndex(for: s, on: conn)
                    try run(s, of: m, on: conn)
                    try conn.execute("INSERT INTO chat.schema_migration_steps (version, step, line) VALUES (\(m.version), \(i), \(s.line))")
                }
                try conn.execute("""
                    UPDATE chat.schema_migrations SET completed = true, applied_at = now(),
                           duration_ms = \(Int(Date().timeIntervalSince(t0) * 1000)) WHERE version = \(m.version)
                    """)
                if !resumed.contains(m.version) { applied.append(m.version) }
            }
        }
        let after = try status(connection: conn).currentVersion
        return Report(applied: applied, resumed: resumed, fromVersion: before, toVersion: after,
                      seconds: Date().timeIntervalSince(started))
    }

    /// Takes the migration lock, polling until `deadline`. The wait is logged once, naming the
    /// holder, and again every 30 s, so a deploy log shows why the step is slow.
    private func waitForLock(_ conn: PostgresConnection, deadline: Date) throws {
        var pause = 0.05
        let started = Date()
        var nextNotice = started
        while try !conn.tryAdvisoryLock(Migrator.lockKey) {
            if Date() >= deadline { throw MigrationError.lockTimeout(waited: lockWait) }
            if Date() >= nextNotice {
                let holder = (try? conn.advisoryLockHolder(Migrator.lockKey)) ?? nil
                let left = max(0, Int(deadline.timeIntervalSinceNow.rounded()))
                logger.notice("waiting for the migration lock, held by \(holder ?? "another session") (giving up in \(left) s; see --lock-wait)")
                nextNotice = Date().addingTimeInterval(30)
            }
            Progress.report("migrate: waiting for the migration lock", done: Int64(Date().timeIntervalSince(started)), total: lockWait.components.seconds, unit: "s")
            Thread.sleep(forTimeInterval: pause)
            pause = min(pause * 2, 1)
        }
    }

    // MARK: - Baseline

    /// What `baseline` recorded.
    public struct BaselineReport: Codable, Sendable {
        public var version: Int
        public var recorded: [Int]
    }

    /// Adopts a database whose schema was built without chatstore (for example from
    /// `chatstore migrate plan --offline | psql`): records migrations 1…`version` as applied,
    /// with their checksums, without running them, so that `migrate` applies only later ones.
    ///
    /// Refused (nothing recorded) when the database already has migration history, when
    /// `version` is not a known migration, or when a table that those migrations create is
    /// missing (named with its file and line): baseline adopts a schema, it does not invent one.
    public func baseline(connection conn: PostgresConnection, version: Int) throws -> BaselineReport {
        guard migrations.contains(where: { $0.version == version }) else { throw MigrationError.unknownTarget(version) }
        try waitForLock(conn, deadline: Date().addingTimeInterval(Double(lockWait.components.seconds)))
        defer { _ = try? conn.advisoryUnlock(Migrator.lockKey) }
        let rec = try recorded(conn)
        if !rec.isEmpty {
            throw MigrationError.refused("baseline refused: the database already has migration history (current version \(rec.values.filter(\.completed).map(\.version).max() ?? 0)): baseline only adopts a database that chatstore never migrated; run `chatstore migrate status`")
        }
        let adopted = migrations.filter { $0.version <= version }
        for (table, migration, line) in Migrator.tablesCreated(by: adopted) {
            if try conn.scalar(Bool.self, "SELECT to_regclass(\(table)) IS NULL") {
                throw MigrationError.refused("baseline refused: table \(table) (created by \(migration.fileName):\(line)) does not exist: this database is not at version \(version); run `chatstore migrate` on an empty database instead, or baseline at the version it is at")
            }
        }
        try conn.transaction { c in
            try c.executeScript(Migrator.historyDDL)
            for m in adopted {
                try c.execute("""
                    INSERT INTO chat.schema_migrations (version, file, checksum, transactional, completed, duration_ms, tool_version)
                    VALUES (\(m.version), \(m.fileName), \(m.checksum), \(m.isTransactional), true, 0, \(ChatStoreVersion.string + " (baseline)"))
                    """)
                if !m.isTransactional {
                    for (i, s) in m.statements.enumerated() {
                        try c.execute("INSERT INTO chat.schema_migration_steps (version, step, line) VALUES (\(m.version), \(i), \(s.line))")
                    }
                }
            }
        }
        logger.info("baseline: recorded migrations 1-\(version) as applied without running them")
        return BaselineReport(version: version, recorded: adopted.map(\.version))
    }

    /// The tables that `migrations` leave behind: every `CREATE TABLE name` not dropped by a
    /// later `DROP TABLE name` among them, with the file and line that creates it.
    static func tablesCreated(by migrations: [Migration]) -> [(String, Migration, Int)] {
        var out: [(String, Migration, Int)] = []
        for m in migrations {
            for s in m.statements {
                let words = s.text.split(whereSeparator: { $0.isWhitespace || $0 == "(" || $0 == ";" }).map(String.init)
                let upper = words.map { $0.uppercased() }
                guard upper.count >= 3, upper[0] == "CREATE" || upper[0] == "DROP" else { continue }
                var k = 1
                if upper[0] == "CREATE" {
                    while k < upper.count, ["UNLOGGED", "TEMP", "TEMPORARY"].contains(upper[k]) { k += 1 }
                }
                guard k < upper.count, upper[k] == "TABLE" else { continue }
                k += 1
                while k < upper.count, ["IF", "NOT", "EXISTS"].contains(upper[k]) { k += 1 }
                guard k < words.count else { continue }
                let name = words[k].lowercased()
                if upper[0] == "DROP" {
                    out.removeAll { $0.0 == name }
                } else if upper.contains("PARTITION") && upper.contains("OF") {
                    continue  // partitions are made and retired by chatstore partitions, not kept by baseline
                } else {
                    out.append((name, m, s.line))
                }
            }
        }
        return out
    }

    private func run(_ s: SQLStatement, of m: Migration, on conn: PostgresConnection) throws {
        do {
            try conn.execute(SQL(unsafeRaw: s.text))
        } catch let e as PostgresError {
            var line = s.line
            if let pos = e.position {
                // Point at the line inside the statement where the server found the error.
                line += s.text.unicodeScalars.prefix(pos - 1).filter { $0 == "\n" }.count
            }
            throw MigrationError.statementFailed(file: m.fileName, line: line, statement: s.text,
                                                 sqlState: e.sqlState?.rawValue, message: e.message, detail: e.detail)
        }
    }

    /// For `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name`: if an index of that name
    /// exists but is INVALID (a failed concurrent build), drop it so the build runs again.
    private func dropInvalidIndex(for s: SQLStatement, on conn: PostgresConnection) throws {
        let words = s.text.split(whereSeparator: { $0.isWhitespace }).map { String($0) }
        let upper = words.map { $0.uppercased() }
        guard let idx = upper.firstIndex(of: "CONCURRENTLY"), upper.prefix(idx).contains("INDEX"), upper.first == "CREATE" else { return }
        var n = idx + 1
        if upper.count > n + 2, upper[n] == "IF", upper[n + 1] == "NOT", upper[n + 2] == "EXISTS" { n += 3 }
        guard n < words.count, upper[n] != "ON" else { return }
        let name = words[n]
        let qualified = name.contains(".") ? name : "chat." + name
        let invalid = try conn.scalar(Bool.self, """
            SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = to_regclass(\(qualified)) AND NOT i.indisvalid)
            """)
        if invalid {
            logger.warning("index \(qualified) is INVALID (an earlier concurrent build failed): dropping and rebuilding it")
            try conn.execute(SQL(unsafeRaw: "DROP INDEX CONCURRENTLY IF EXISTS \(qualified)"))
        }
    }
}
