import CChatStoreLibPQ
import Foundation
import Logging

/// One libpq connection. Not thread-safe: use one connection per thread or task.
///
/// Every session is set to `DateStyle = ISO, YMD`, `TimeZone = UTC` and
/// `client_encoding = UTF8`, so text decoding is predictable. Server notices go to the logger.
///
/// ```swift
/// let conn = try PostgresConnection(settings: .resolve(databaseURL: nil), logger: logger)
/// let rows = try conn.query("SELECT id FROM users WHERE name = \(name)")
/// ```
public final class PostgresConnection {
    let handle: OpaquePointer
    /// Where notices and debug output go.
    public let logger: Logger
    /// A description of the server connected to (`user@host:port/db`), without any password.
    public let endpoint: String
    private var noticeBox: Unmanaged<NoticeBox>?
    private var transactionDepth = 0

    /// Connects using resolved settings.
    /// - Throws: `PostgresError` of kind `.connection` with libpq's message (which never contains a password).
    public init(settings: ConnectionSettings, logger: Logger = Logger(label: "chatstore.postgres")) throws {
        self.logger = logger
        let keys = ["dbname", "fallback_application_name", "client_encoding"]
        let values = [settings.conninfo, PostgresConnection.applicationName, "UTF8"]
        let ckeys = keys.map { strdup($0) }
        let cvalues = values.map { strdup($0) }
        defer { ckeys.forEach { free($0) }; cvalues.forEach { free($0) } }
        var kp: [UnsafePointer<CChar>?] = ckeys.map { UnsafePointer($0) } + [nil]
        var vp: [UnsafePointer<CChar>?] = cvalues.map { UnsafePointer($0) } + [nil]
        // An empty conninfo in "dbname" with expand_dbname would be taken literally; drop it.
        if settings.conninfo.isEmpty { kp.removeFirst(); vp.removeFirst() }
        guard let conn = PQconnectdbParams(kp, vp, 1) else {
            throw PostgresError(kind: .connection, message: "libpq could not allocate a connection")
        }
        if PQstatus(conn) != CONNECTION_OK {
            // libpq's message spans lines ("...failed: ...\n\tIs the server running...?"): one line.
            let msg = String(cString: PQerrorMessage(conn)).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: "; ")
            PQfinish(conn)
            throw PostgresError(kind: .connection, message: "could not connect to PostgreSQL (\(settings.redactedDescription)): \(msg)")
        }
        handle = conn
        let host = PQhost(conn).map { String(cString: $0) } ?? "?"
        let port = PQport(conn).map { String(cString: $0) } ?? "?"
        let db = PQdb(conn).map { String(cString: $0) } ?? "?"
        let user = PQuser(conn).map { String(cString: $0) } ?? "?"
        endpoint = "\(user)@\(host):\(port)/\(db)"
        let box = Unmanaged.passRetained(NoticeBox(logger: logger))
        noticeBox = box
        PQsetNoticeReceiver(conn, { arg, res in
            guard let arg, let res else { return }
            let box = Unmanaged<NoticeBox>.fromOpaque(arg).takeUnretainedValue()
            let severity = PQresultErrorField(res, Int32(UInt8(ascii: "V"))).map { String(cString: $0) } ?? "NOTICE"
            let msg = PQresultErrorField(res, Int32(UInt8(ascii: "M"))).map { String(cString: $0) } ?? ""
            switch severity {
            case "WARNING": box.logger.warning("server: \(msg)")
            default: box.logger.debug("server \(severity.lowercased()): \(msg)")
            }
        }, box.toOpaque())
        try execute("SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'iso_8601'", simple: true)
        // A client killed mid-statement (kill -9, a lost connection) is noticed within a second:
        // the backend stops its statement and releases the session's locks, so a rerun does not
        // find them still held. PostgreSQL 14 and later.
        if serverVersion >= 140000 {
            try execute("SET client_connection_check_interval = '1s'", simple: true)
        }
    }

    /// The `application_name` every session reports unless `PGAPPNAME` or the connection string
    /// sets one (`chatstore nightly`, ...): what operators see in `pg_stat_activity`. The
    /// command-line tool sets it once at startup, before any connection.
    nonisolated(unsafe) public static var applicationName = "chatstore"

    deinit {
        PQfinish(handle)
        noticeBox?.release()
    }

    /// Server version as an integer (150018 for 15.18).
    public var serverVersion: Int { Int(PQserverVersion(handle)) }

    /// The backend process id (for `pg_terminate_backend` in tests and tooling).
    public var backendPID: Int { Int(PQbackendPID(handle)) }

    /// True when the connection is still usable.
    public var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK }

    /// Quotes an identifier with libpq's `PQescapeIdentifier`.
    public func quoteIdentifier(_ name: String) -> String {
        guard let p = PQescapeIdentifier(handle, name, name.utf8.count) else { return SQL.quoteIdentifier(name) }
        defer { PQfreemem(p) }
        return String(cString: p)
    }

    /// Renders a statement's text for this connection (placeholders and quoted identifiers).
    public func render(_ sql: SQL) -> String { sql.render(quoteIdentifier: quoteIdentifier) }

    /// Executes one statement with its values bound as parameters.
    /// - Returns: the result (rows for a query; affected rows for DML).
    /// - Throws: `PostgresError` with SQLSTATE, message, detail, hint and the statement.
    @discardableResult
    public func execute(_ sql: SQL) throws -> PostgresResult {
        let text = render(sql)
        let started = ContinuousClock.now
        defer { logStatement(text, since: started) }
        let binds = sql.binds
        if binds.isEmpty {
            return try check(PQexecParams(handle, text, 0, nil, nil, nil, nil, 0), statement: text)
        }
        var types: [Oid] = []
        var values: [UnsafeMutablePointer<CChar>?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        defer { values.forEach { free($0) } }
        for b in binds {
            switch b {
            case .null:
                types.append(0); values.append(nil); lengths.append(0); formats.append(0)
            case .text(let s, let oid):
                types.append(Oid(oid)); values.append(strdup(s)); lengths.append(0); formats.append(0)
            case .binary(let bytes, let oid):
                let p = malloc(max(bytes.count, 1))!.assumingMemoryBound(to: CChar.self)
                bytes.withUnsafeBytes { raw in
                    if let base = raw.baseAddress { memcpy(p, base, bytes.count) }
                }
                types.append(Oid(oid)); values.append(p); lengths.append(Int32(bytes.count)); formats.append(1)
            }
        }
        let res = values.withUnsafeBufferPointer { vp in
            vp.withMemoryRebound(to: UnsafePointer<CChar>?.self) { cvp in
                PQexecParams(handle, text, Int32(binds.count), types, cvp.baseAddress, lengths, formats, 0)
            }
        }
        return try check(res, statement: text)
    }

    /// Executes SQL text that may hold several statements (the simple query protocol), with no
    /// parameters. For migrations and trusted scripts only.
    public func executeScript(_ script: String) throws {
        try execute(script, simple: true)
    }

    /// At debug level (`--verbose`), one line per statement with its duration: the text with
    /// its `$n` placeholders, never the bound values, whitespace collapsed, cut at 300 characters.
    func logStatement(_ text: String, since started: ContinuousClock.Instant) {
        guard logger.logLevel <= .debug else { return }
        let elapsed = ContinuousClock.now - started
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        var shown = text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        if shown.count > 300 { shown = String(shown.prefix(300)) + "…" }
        logger.debug("statement \(String(format: "%.1f", ms)) ms: \(shown)")
    }

    private func execute(_ script: String, simple: Bool) throws {
        let started = ContinuousClock.now
        defer { logStatement(script, since: started) }
        guard PQsendQuery(handle, script) == 1 else { throw connectionError(statement: script) }
        var firstError: PostgresError?
        while let res = PQgetResult(handle) {
            let status = PQresultStatus(res)
            if status == PGRES_FATAL_ERROR, firstError == nil {
                firstError = serverError(res, statement: script)
            } else if status == PGRES_COPY_IN {
                _ = PQputCopyEnd(handle, "COPY is not supported in scripts")
            } else if status == PGRES_COPY_OUT {
                var buf: UnsafeMutablePointer<CChar>?
                while PQgetCopyData(handle, &buf, 0) > 0 { PQfreemem(buf) }
            }
            PQclear(res)
        }
        if let firstError { throw firstError }
    }

    /// Runs a query and returns its rows.
    public func query(_ sql: SQL) throws -> [PostgresRow] { try execute(sql).rows }

    /// Runs a query expected to return at most one row.
    public func queryOne(_ sql: SQL) throws -> PostgresRow? { try execute(sql).rows.first }

    /// Runs a query and decodes the first column of the first row.
    public func scalar<T: PostgresDecodable>(_ type: T.Type, _ sql: SQL) throws -> T {
        guard let row = try queryOne(sql) else {
            throw PostgresError(kind: .usage, message: "query returned no row", statement: render(sql))
        }
        return try row.decode(T.self, at: 0)
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws. Nested calls
    /// use savepoints.
    @discardableResult
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let savepoint = "chatstore_sp_\(transactionDepth)"
        try execute(transactionDepth == 0 ? "BEGIN" : SQL(unsafeRaw: "SAVEPOINT \(savepoint)"))
        transactionDepth += 1
        do {
            let value = try body(self)
            transactionDepth -= 1
            try execute(transactionDepth == 0 ? "COMMIT" : SQL(unsafeRaw: "RELEASE SAVEPOINT \(savepoint)"))
            return value
        } catch {
            transactionDepth -= 1
            if isHealthy {
                _ = try? execute(transactionDepth == 0 ? "ROLLBACK" : SQL(unsafeRaw: "ROLLBACK TO SAVEPOINT \(savepoint)"))
            }
            throw error
        }
    }

    /// True while inside `transaction`.
    public var inTransaction: Bool { transactionDepth > 0 }

    /// Runs `body` in one REPEATABLE READ READ ONLY transaction, so that everything it reads
    /// comes from one snapshot. Inside a transaction already, it runs in that one (as a
    /// savepoint), whose isolation level then decides.
    public func snapshotTransaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try transaction { c in
            if c.transactionDepth == 1 { try c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY") }
            return try body(c)
        }
    }

    /// Sets `statement_timeout` and `lock_timeout` for this session (nil leaves a setting alone;
    /// zero disables it).
    public func setTimeouts(statement: Duration? = nil, lock: Duration? = nil) throws {
        func ms(_ d: Duration) -> Int { Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000) }
        if let statement { try execute("SELECT set_config('statement_timeout', \(String(ms(statement))), false)") }
        if let lock { try execute("SELECT set_config('lock_timeout', \(String(ms(lock))), false)") }
    }

    /// Asks the server to cancel the statement running on this connection (callable from another thread).
    public func cancel() {
        guard let c = PQgetCancel(handle) else { return }
        var buf = [CChar](repeating: 0, count: 256)
        _ = PQcancel(c, &buf, 256)
        PQfreeCancel(c)
    }

    // MARK: - Results and errors

    func check(_ res: OpaquePointer?, statement: String) throws -> PostgresResult {
        guard let res else { throw connectionError(statement: statement) }
        switch PQresultStatus(res) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return PostgresResult(handle: res, statement: statement)
        case PGRES_COPY_IN, PGRES_COPY_OUT:
            PQclear(res)
            // Leave the connection usable: abort the COPY.
            _ = PQputCopyEnd(handle, "COPY must use copyIn/copyOut")
            while let r = PQgetResult(handle) { PQclear(r) }
            throw PostgresError(kind: .usage, message: "COPY statements must run through copyIn/copyOut", statement: statement)
        default:
            let error = serverError(res, statement: statement)
            PQclear(res)
            throw error
        }
    }

    func serverError(_ res: OpaquePointer, statement: String?) -> PostgresError {
        func field(_ code: Character) -> String? {
            PQresultErrorField(res, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        let message = field("M") ?? String(cString: PQresultErrorMessage(res)).trimmingCharacters(in: .whitespacesAndNewlines)
        let state = field("C").map { SQLState($0) }
        return PostgresError(kind: state == nil ? .connection : .server,
                             sqlState: state, message: message.isEmpty ? String(cString: PQerrorMessage(handle)) : message,
                             detail: field("D"), hint: field("H"), constraintName: field("n"),
                             tableName: field("t"), columnName: field("c"),
                             position: field("P").flatMap { Int($0) }, statement: statement)
    }

    func connectionError(statement: String?) -> PostgresError {
        let msg = String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
        return PostgresError(kind: .connection, message: msg.isEmpty ? "connection failure" : msg, statement: statement)
    }
}

final class NoticeBox {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
}

extension PostgresConnection {
    /// Runs an `INSERT`, `UPDATE` or `DELETE` that has no `RETURNING` clause and returns the
    /// rows it really wrote, counted from `RETURNING` rather than from the command tag.
    ///
    /// On Citus the command tag of an `INSERT ... SELECT` whose rows pass through the
    /// coordinator (from a temporary table, or with `ON CONFLICT`) counts the rows sent to the
    /// shards, including those `ON CONFLICT` skipped; `RETURNING` counts what was written, on
    /// Citus and on plain PostgreSQL alike.
    @discardableResult
    public func executeCountingRows(_ statement: SQL) throws -> Int {
        var wrapped = SQL(unsafeRaw: "WITH written AS (\n")
        wrapped.append(statement)
        wrapped.append(SQL(unsafeRaw: "\nRETURNING 1) SELECT count(*) FROM written"))
        return try scalar(Int.self, wrapped)
    }
}
