import ChatStorePostgres
import Foundation

/// A SQL file from `Queries/` (compiled into the binary), written with psql variables
/// (`:'name'`) so a DBA can run it with `psql -v name=... -f`. `bind` turns each `:'name'` into a
/// `$n` parameter, so values are never spliced into the text.
public struct QueryFile: Sendable {
    public let name: String
    public let text: String

    /// Loads an embedded query file by name (`unread_full.sql`).
    /// - Throws: `JobError` when there is no such file.
    public static func named(_ name: String) throws -> QueryFile {
        guard let q = EmbeddedSQL.queries.first(where: { $0.name == name }) else {
            throw JobError("no query file \(name) in this binary")
        }
        return QueryFile(name: q.name, text: q.text)
    }

    /// Every embedded query file.
    public static var all: [QueryFile] { EmbeddedSQL.queries.map { QueryFile(name: $0.name, text: $0.text) } }

    /// The statements of the file, each with its variables bound.
    /// - Throws: `JobError` naming the file and line when a variable has no value.
    public func statements(_ variables: [String: any PostgresEncodable]) throws -> [SQL] {
        let parts: [SQLStatement]
        do { parts = try SQLScript.statements(text) } catch { throw JobError("\(name): \(error)") }
        return try parts.map { try QueryFile.bind($0.text, variables, file: name, line: $0.line) }
    }

    /// The single statement of the file with its variables bound.
    public func statement(_ variables: [String: any PostgresEncodable] = [:]) throws -> SQL {
        let all = try statements(variables)
        guard all.count == 1 else { throw JobError("\(name) holds \(all.count) statements, expected one") }
        return all[0]
    }

    static func bind(_ text: String, _ variables: [String: any PostgresEncodable], file: String, line: Int) throws -> SQL {
        var sql = SQL(unsafeRaw: "")
        var order: [String: Int] = [:]
        var binds: [PostgresBind] = []
        var out = ""
        var rest = Substring(text)
        while let r = rest.range(of: ":'") {
            guard let close = rest[r.upperBound...].firstIndex(of: "'") else { break }
            let name = String(rest[r.upperBound..<close])
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }), !name.isEmpty else {
                out += rest[..<r.upperBound]
                rest = rest[r.upperBound...]
                continue
            }
            guard let value = variables[name] else { throw JobError("\(file):\(line): no value for variable :'\(name)'") }
            out += rest[..<r.lowerBound]
            if let i = order[name] { out += "$\(i)" } else {
                binds.append(value.postgresBind)
                order[name] = binds.count
                out += "$\(binds.count)"
            }
            rest = rest[rest.index(after: close)...]
        }
        out += rest
        sql = SQL(unsafeRaw: out, binds: binds)
        return sql
    }
}

/// A batch job failure.
public struct JobError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
