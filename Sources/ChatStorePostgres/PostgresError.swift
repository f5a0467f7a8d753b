import Foundation

/// A five-character SQLSTATE code reported by the server (for example `23505`).
///
/// Compare with the named constants in `catch` patterns:
/// ```swift
/// do { try conn.execute("INSERT ...") }
/// catch let error as PostgresError where error.sqlState == .uniqueViolation { ... }
/// ```
public struct SQLState: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The raw five-character code.
    public let rawValue: String
    /// Wraps a raw SQLSTATE code.
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }
    /// The two-character class (`23` for integrity constraint violations).
    public var errorClass: String { String(rawValue.prefix(2)) }

    public static let uniqueViolation: SQLState = "23505"
    public static let foreignKeyViolation: SQLState = "23503"
    public static let notNullViolation: SQLState = "23502"
    public static let checkViolation: SQLState = "23514"
    public static let syntaxError: SQLState = "42601"
    public static let undefinedTable: SQLState = "42P01"
    public static let undefinedColumn: SQLState = "42703"
    public static let undefinedFunction: SQLState = "42883"
    public static let duplicateObject: SQLState = "42710"
    public static let duplicateTable: SQLState = "42P07"
    public static let insufficientPrivilege: SQLState = "42501"
    public static let lockNotAvailable: SQLState = "55P03"
    public static let objectInUse: SQLState = "55006"
    public static let queryCanceled: SQLState = "57014"
    public static let deadlockDetected: SQLState = "40P01"
    public static let serializationFailure: SQLState = "40001"
    public static let invalidTextRepresentation: SQLState = "22P02"
    public static let checkViolationPartition: SQLState = "23514"
    public static let noPartitionForRow: SQLState = "23514"
    public static let characterNotInRepertoire: SQLState = "22021"
    public static let adminShutdown: SQLState = "57P01"
    public static let activeSQLTransaction: SQLState = "25001"

    /// True for errors worth retrying as a whole transaction (lock timeout, deadlock, serialization).
    public var isTransient: Bool {
        self == .lockNotAvailable || self == .deadlockDetected || self == .serializationFailure
    }
}

/// An error from the Postgres layer: a server error with its SQLSTATE and fields, a connection
/// failure, or a value that could not be decoded.
///
/// `description` never contains bound parameter values or passwords; the statement text is
/// included because bound values are never spliced into it.
public struct PostgresError: Error, CustomStringConvertible, LocalizedError, Sendable {
    /// What kind of failure this is. A struct over a private enum so new kinds don't break API.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable { case connection, server, copy, decoding, protocolViolation, usage }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// Could not connect, or the connection broke.
        public static let connection = Kind(.connection)
        /// The server reported an error (see `sqlState`).
        public static let server = Kind(.server)
        /// A COPY stream failed on the client side.
        public static let copy = Kind(.copy)
        /// A column value could not be decoded into the requested type.
        public static let decoding = Kind(.decoding)
        /// The server answered something the layer did not expect.
        public static let protocolViolation = Kind(.protocolViolation)
        /// The API was used in a way that cannot work (for example a missing column).
        public static let usage = Kind(.usage)
        public var description: String { base.rawValue }
    }

    public var kind: Kind
    /// SQLSTATE reported by the server, if any.
    public var sqlState: SQLState?
    /// Primary message.
    public var message: String
    public var detail: String?
    public var hint: String?
    public var constraintName: String?
    public var tableName: String?
    public var columnName: String?
    /// 1-based character position of the error in the statement, when the server reports it.
    public var position: Int?
    /// The statement text (with `$n` placeholders, never bound values).
    public var statement: String?

    /// A unique violation: SQLSTATE 23505, or, on Citus, the same error raised by a worker
    /// during a `COPY` into a distributed table, which the coordinator reports as XX000 with the
    /// worker's message.
    public var isUniqueViolation: Bool {
        sqlState == .uniqueViolation
            || (sqlState == SQLState("XX000") && message.hasPrefix("duplicate key value violates unique constraint"))
    }

    public init(kind: Kind, sqlState: SQLState? = nil, message: String, detail: String? = nil,
                hint: String? = nil, constraintName: String? = nil, tableName: String? = nil,
                columnName: String? = nil, position: Int? = nil, statement: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.constraintName = constraintName
        self.tableName = tableName
        self.columnName = columnName
        self.position = position
        self.statement = statement
    }

    public var description: String {
        var s = sqlState.map { "SQLSTATE \($0): \(message)" } ?? message
        if let detail { s += "\n  detail: \(detail)" }
        if let hint { s += "\n  hint: \(hint)" }
        if let constraintName { s += "\n  constraint: \(constraintName)" }
        if let statement {
            let oneLine = statement.count > 400 ? String(statement.prefix(400)) + "…" : statement
            s += "\n  statement: \(oneLine)"
            if let position { s += "\n  position: \(position)" }
        }
        return s
    }

    public var errorDescription: String? { description }

    /// The error on one line, for operators: the server's message, its detail and hint, and
    /// what to do for the common cases (a missing privilege, a timeout, a lock held elsewhere),
    /// without the SQLSTATE or the statement (those are in `description`, shown with --verbose).
    public var summary: String {
        var s = message
        if let detail { s += " (\(detail))" }
        if let hint { s += "; hint: \(hint)" }
        if let advice = advice { s += ": \(advice)" }
        return s.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    /// What to do, for SQLSTATEs an operator can act on.
    var advice: String? {
        switch sqlState?.rawValue {
        case "42501": return "the role lacks a privilege; grant it (docs/schema.md lists what chatstore_app and chatstore_batch need), or connect as the owner"
        case "57014": return "the statement ran into statement_timeout or was cancelled; raise --statement-timeout or run it at a quieter time"
        case "55P03": return "a lock was held by another session for longer than lock_timeout; run again later (--verbose shows the statement)"
        case "40P01", "40001": return "a concurrent transaction conflicted; run the command again"
        case "53100": return "the server's disk is full"
        case "53200": return "the server ran out of memory"
        case "53300": return "the server has no free connection slots"
        case "42P01", "3F000": return "the schema is missing or not migrated; run `chatstore migrate`"
        case "25006": return "the server is read-only (a standby?); connect to the primary"
        default: return nil
        }
    }

    /// Returns a copy with `statement` set when it was not known where the error was raised.
    public func withStatement(_ statement: String) -> PostgresError {
        var copy = self
        if copy.statement == nil { copy.statement = statement }
        return copy
    }
}
