import CChatStoreLibPQ
import Foundation

/// A value type that can be decoded from a column in text format.
public protocol PostgresDecodable {
    /// Decodes from the server's text output. Throw `PostgresDecodingFailure` with a reason.
    init(postgresText text: String) throws
}

/// Thrown by `PostgresDecodable` conformances; the row wraps it into a `PostgresError` that names
/// the column.
public struct PostgresDecodingFailure: Error {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

extension String: PostgresDecodable {
    public init(postgresText text: String) throws { self = text }
}
extension Int: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let v = Int(text) else { throw PostgresDecodingFailure("not an integer: \(text.prefix(40))") }
        self = v
    }
}
extension Int64: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let v = Int64(text) else { throw PostgresDecodingFailure("not an integer: \(text.prefix(40))") }
        self = v
    }
}
extension Int32: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let v = Int32(text) else { throw PostgresDecodingFailure("not a 32-bit integer: \(text.prefix(40))") }
        self = v
    }
}
extension Double: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let v = Double(text) else { throw PostgresDecodingFailure("not a number: \(text.prefix(40))") }
        self = v
    }
}
extension Bool: PostgresDecodable {
    public init(postgresText text: String) throws {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw PostgresDecodingFailure("not a boolean: \(text.prefix(40))")
        }
    }
}
extension Date: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let d = PostgresTimestamp.parse(text) else {
            throw PostgresDecodingFailure("not an ISO timestamp: \(text.prefix(40))")
        }
        self = d
    }
}
extension Data: PostgresDecodable {
    public init(postgresText text: String) throws {
        let u = Array(text.utf8)
        guard u.count >= 2, u[0] == 92, u[1] == 120, u.count % 2 == 0 else {
            throw PostgresDecodingFailure("not bytea hex output")
        }
        var out = Data(capacity: (u.count - 2) / 2)
        func nib(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return nil
            }
        }
        var i = 2
        while i < u.count {
            guard let hi = nib(u[i]), let lo = nib(u[i + 1]) else { throw PostgresDecodingFailure("bad hex in bytea") }
            out.append(hi << 4 | lo)
            i += 2
        }
        self = out
    }
}

/// The rows and status of one executed statement. Owns the libpq result and frees it.
public final class PostgresResult: @unchecked Sendable {
    let handle: OpaquePointer
    /// Column names in order.
    public let columns: [String]
    private let columnIndex: [String: Int]
    /// Number of rows returned.
    public let rowCount: Int
    /// The statement text, for error messages.
    let statement: String

    init(handle: OpaquePointer, statement: String) {
        self.handle = handle
        self.statement = statement
        let n = Int(PQnfields(handle))
        var cols: [String] = []
        var index: [String: Int] = [:]
        for i in 0..<n {
            let name = String(cString: PQfname(handle, Int32(i)))
            cols.append(name)
            if index[name] == nil { index[name] = i }
        }
        columns = cols
        columnIndex = index
        rowCount = Int(PQntuples(handle))
    }

    deinit { PQclear(handle) }

    /// Rows affected by INSERT/UPDATE/DELETE/COPY (from the command tag), 0 when not reported.
    public var affectedRows: Int {
        guard let p = PQcmdTuples(handle) else { return 0 }
        return Int(String(cString: p)) ?? 0
    }

    /// The command tag (`INSERT 0 5`, `SELECT 3`).
    public var commandTag: String { String(cString: PQcmdStatus(handle)) }

    /// All rows.
    public var rows: [PostgresRow] { (0..<rowCount).map { PostgresRow(result: self, index: $0) } }

    func column(named name: String) throws -> Int {
        guard let i = columnIndex[name] else {
            throw PostgresError(kind: .usage,
                                message: "no column \"\(name)\" in result (columns: \(columns.joined(separator: ", ")))",
                                statement: statement)
        }
        return i
    }
}

/// One row of a `PostgresResult`.
public struct PostgresRow: @unchecked Sendable {
    let result: PostgresResult
    /// Row number within its result (0-based).
    public let index: Int

    func rawText(_ col: Int) -> String? {
        if PQgetisnull(result.handle, Int32(index), Int32(col)) != 0 { return nil }
        return String(cString: PQgetvalue(result.handle, Int32(index), Int32(col)))
    }

    /// Decodes a non-NULL column by name.
    /// - Throws: `PostgresError` of kind `.decoding` naming the column when the value is NULL or malformed.
    public func decode<T: PostgresDecodable>(_ type: T.Type, _ column: String) throws -> T {
        try decode(type, at: result.column(named: column))
    }

    /// Decodes a nullable column by name: SQL NULL becomes `nil`.
    public func decode<T: PostgresDecodable>(_ type: T?.Type, _ column: String) throws -> T? {
        try decode(type, at: result.column(named: column))
    }

    /// Decodes a non-NULL column by position.
    public func decode<T: PostgresDecodable>(_ type: T.Type, at col: Int) throws -> T {
        guard col < result.columns.count else {
            throw PostgresError(kind: .usage, message: "column index \(col) out of range", statement: result.statement)
        }
        guard let text = rawText(col) else {
            throw PostgresError(kind: .decoding,
                                message: "column \"\(result.columns[col])\" (row \(index)) is NULL; decode as \(T.self)? to accept NULL",
                                columnName: result.columns[col], statement: result.statement)
        }
        do { return try T(postgresText: text) } catch let f as PostgresDecodingFailure {
            throw PostgresError(kind: .decoding,
                                message: "column \"\(result.columns[col])\" (row \(index)) as \(T.self): \(f.reason)",
                                columnName: result.columns[col], statement: result.statement)
        }
    }

    /// Decodes a nullable column by position.
    public func decode<T: PostgresDecodable>(_ type: T?.Type, at col: Int) throws -> T? {
        guard col < result.columns.count else {
            throw PostgresError(kind: .usage, message: "column index \(col) out of range", statement: result.statement)
        }
        if rawText(col) == nil { return nil }
        return try decode(T.self, at: col)
    }

    /// True when the column is SQL NULL.
    public func isNull(_ column: String) throws -> Bool { rawText(try result.column(named: column)) == nil }
}
