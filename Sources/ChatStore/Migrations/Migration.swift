import Foundation

/// One versioned migration file (`NNNN_name.sql`).
///
/// A file whose first line is `-- chatstore:no-transaction` runs statement by statement outside
/// a transaction (for `CREATE INDEX CONCURRENTLY`), with each completed step recorded so that a
/// failure resumes where it stopped. Every other file runs in one transaction.
public struct Migration: Sendable, Equatable {
    /// The version number from the file name.
    public let version: Int
    /// The file name (`0001_schema_v1.sql`).
    public let fileName: String
    /// The file's text.
    public let text: String
    /// sha256 of the file's bytes, lower-case hex.
    public let checksum: String
    /// True when the file runs statement by statement outside a transaction.
    public let isTransactional: Bool
    /// The statements in order.
    public let statements: [SQLStatement]

    /// Parses a migration from its file name and text.
    /// - Throws: `MigrationError` when the name does not start with a version number.
    public init(fileName: String, text: String) throws {
        let digits = fileName.prefix(while: { $0.isNumber })
        guard !digits.isEmpty, let v = Int(digits), v > 0, fileName.hasSuffix(".sql") else {
            throw MigrationError.badFileName(fileName)
        }
        version = v
        self.fileName = fileName
        self.text = text
        checksum = SHA256.hash(text).hex
        isTransactional = !(text.split(separator: "\n", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces) == "-- chatstore:no-transaction"
        } ?? false)
        do {
            statements = try SQLScript.statements(text)
        } catch {
            throw MigrationError.badScript(file: fileName, error)
        }
    }

    /// The migrations compiled into this binary.
    public static func embedded() throws -> [Migration] {
        try EmbeddedSQL.migrations.map { try Migration(fileName: $0.name, text: $0.text) }
    }

    /// Reads `*.sql` migrations from a directory (for development against edited files).
    public static func load(directory: String) throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted()
        return try names.map { name in
            try Migration(fileName: name, text: String(contentsOfFile: directory + "/" + name, encoding: .utf8))
        }
    }

    /// sha256 over every migration's version and checksum, in order: changes when any file is
    /// edited, added, removed or renumbered.
    public static func planChecksum(_ migrations: [Migration]) -> String {
        var h = SHA256()
        for m in migrations { h.update("\(m.version):\(m.checksum)\n") }
        return h.finalize().hex
    }
}

/// Why migrating failed or was refused.
public enum MigrationError: Error, CustomStringConvertible, LocalizedError {
    case badFileName(String)
    case duplicateVersion(Int, String, String)
    case checksumMismatch(version: Int, file: String, recorded: String, current: String)
    case unknownVersion(version: Int, name: String)
    case statementFailed(file: String, line: Int, statement: String, sqlState: String?, message: String, detail: String?)
    case lockTimeout(waited: Duration)
    case unknownTarget(Int)
    case badScript(file: String, SQLScriptError)
    case refused(String)

    public var description: String {
        switch self {
        case .badFileName(let f):
            return "migration file name \(f) must look like NNNN_name.sql"
        case .duplicateVersion(let v, let a, let b):
            return "two migration files have version \(v): \(a) and \(b)"
        case .checksumMismatch(let v, let f, let rec, let cur):
            return "migration \(f) (version \(v)) was changed after it was applied: recorded sha256 \(rec), file now \(cur). Applied migrations are append-only: revert the edit and add a new migration."
        case .unknownVersion(let v, let n):
            return "the database has migration version \(v) (\(n)) that this binary does not know: use a newer chatstore"
        case .statementFailed(let f, let line, let stmt, let state, let msg, let detail):
            let shown = stmt.count > 300 ? String(stmt.prefix(300)) + "…" : stmt
            var s = "\(f):\(line): SQLSTATE \(state ?? "?"): \(msg)"
            if let detail { s += "\n  detail: \(detail)" }
            s += "\n  statement: \(shown)"
            return s
        case .lockTimeout(let d):
            return "another migrator holds the migration lock (waited \(d)); try again later"
        case .refused(let why):
            return why
        case .badScript(let f, let e):
            return "\(f): \(e)"
        case .unknownTarget(let v):
            return "--to \(v): no migration has that version"
        }
    }

    public var errorDescription: String? { description }

    /// One line: for a failed statement, the file, line and the server's message and detail,
    /// without the SQLSTATE and the statement (`description` has them, shown with --verbose).
    public var summary: String {
        if case .statementFailed(let f, let line, _, _, let msg, let detail) = self {
            return "\(f):\(line): \(msg)" + (detail.map { " (\($0))" } ?? "") + " (--verbose shows the SQLSTATE and statement; `chatstore migrate status` shows what was applied)"
        }
        return description
    }
}
