import Foundation

/// A SQL statement whose interpolated values become `$n` bind parameters.
///
/// Values are never spliced into the text; identifiers are quoted with libpq's
/// `PQescapeIdentifier` when the statement is rendered on a connection.
/// ```swift
/// let q: SQL = "SELECT * FROM \(identifier: table) WHERE id = \(id) AND body = \(text)"
/// // → SELECT * FROM "messages" WHERE id = $1 AND body = $2
/// ```
public struct SQL: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    enum Segment: Sendable {
        case raw(String)
        case bind(Int)
        case identifier(String)
    }

    var segments: [Segment]
    /// The bound values, in `$n` order.
    public private(set) var binds: [PostgresBind]

    /// Wraps SQL text that contains no values. Only for trusted, constant text.
    public init(unsafeRaw text: String) {
        segments = [.raw(text)]
        binds = []
    }

    public init(stringLiteral value: String) { self.init(unsafeRaw: value) }

    /// Text already holding `$1...$n` placeholders, with their values. For query files whose
    /// variables were turned into placeholders; the text must be trusted.
    public init(unsafeRaw text: String, binds: [PostgresBind]) {
        segments = [.raw(text)]
        self.binds = binds
    }

    public init(stringInterpolation: StringInterpolation) {
        segments = stringInterpolation.segments
        binds = stringInterpolation.binds
    }

    /// Text with `$n` placeholders and identifiers quoted by the given function.
    func render(quoteIdentifier: (String) -> String) -> String {
        var out = ""
        for seg in segments {
            switch seg {
            case .raw(let s): out += s
            case .bind(let i): out += "$\(i + 1)"
            case .identifier(let name): out += quoteIdentifier(name)
            }
        }
        return out
    }

    /// The text with `$n` placeholders and identifiers quoted in the standard way.
    public var description: String { render(quoteIdentifier: SQL.quoteIdentifier) }

    /// Standard SQL identifier quoting (double quotes doubled), used where no connection is at hand.
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Appends another statement fragment, renumbering its parameters.
    public mutating func append(_ other: SQL) {
        let offset = binds.count
        for seg in other.segments {
            if case .bind(let i) = seg { segments.append(.bind(i + offset)) } else { segments.append(seg) }
        }
        binds.append(contentsOf: other.binds)
    }

    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        var segments: [Segment] = []
        var binds: [PostgresBind] = []

        public init(literalCapacity: Int, interpolationCount: Int) {}

        public mutating func appendLiteral(_ literal: String) { segments.append(.raw(literal)) }

        /// Binds a value as a parameter.
        public mutating func appendInterpolation<T: PostgresEncodable>(_ value: T) {
            segments.append(.bind(binds.count))
            binds.append(value.postgresBind)
        }

        /// Binds an optional value; `nil` becomes SQL NULL.
        public mutating func appendInterpolation<T: PostgresEncodable>(_ value: T?) {
            segments.append(.bind(binds.count))
            binds.append(value?.postgresBind ?? .null)
        }

        /// Quotes a name as an identifier (table, column, role).
        public mutating func appendInterpolation(identifier name: String) {
            segments.append(.identifier(name))
        }

        /// Quotes a schema-qualified name: `"schema"."table"`.
        public mutating func appendInterpolation(qualified schema: String, _ name: String) {
            segments.append(.identifier(schema))
            segments.append(.raw("."))
            segments.append(.identifier(name))
        }

        /// Splices trusted text verbatim. Never pass user input here.
        public mutating func appendInterpolation(unsafeRaw text: String) { segments.append(.raw(text)) }

        /// Embeds another fragment, renumbering its parameters.
        public mutating func appendInterpolation(_ fragment: SQL) {
            let offset = binds.count
            for seg in fragment.segments {
                if case .bind(let i) = seg { segments.append(.bind(i + offset)) } else { segments.append(seg) }
            }
            binds.append(contentsOf: fragment.binds)
        }
    }
}

/// One bound parameter: SQL NULL, a text-format value or a binary-format value, with its type OID
/// (0 lets the server infer the type from context).
public enum PostgresBind: Sendable, Equatable {
    case null
    case text(String, oid: UInt32)
    case binary([UInt8], oid: UInt32)
}

/// Type OIDs the layer uses.
public enum PostgresOID {
    public static let unknown: UInt32 = 0
    public static let bool: UInt32 = 16
    public static let bytea: UInt32 = 17
    public static let int8: UInt32 = 20
    public static let int2: UInt32 = 21
    public static let int4: UInt32 = 23
    public static let text: UInt32 = 25
    public static let float8: UInt32 = 701
    public static let timestamptz: UInt32 = 1184
    public static let jsonb: UInt32 = 3802
    public static let int8Array: UInt32 = 1016
    public static let textArray: UInt32 = 1009
}

/// A Swift value that can be bound as a query parameter.
public protocol PostgresEncodable: Sendable {
    var postgresBind: PostgresBind { get }
}

extension String: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(self, oid: PostgresOID.unknown) }
}
extension Substring: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(String(self), oid: PostgresOID.unknown) }
}
extension Int: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(String(self), oid: PostgresOID.int8) }
}
extension Int64: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(String(self), oid: PostgresOID.int8) }
}
extension Int32: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(String(self), oid: PostgresOID.int4) }
}
extension Bool: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(self ? "t" : "f", oid: PostgresOID.bool) }
}
extension Double: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(String(self), oid: PostgresOID.float8) }
}
extension Date: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(PostgresTimestamp.format(self), oid: PostgresOID.timestamptz) }
}
extension Data: PostgresEncodable {
    public var postgresBind: PostgresBind { .binary([UInt8](self), oid: PostgresOID.bytea) }
}
extension Array: PostgresEncodable where Element == Int64 {
    public var postgresBind: PostgresBind {
        .text("{" + self.map(String.init).joined(separator: ",") + "}", oid: PostgresOID.int8Array)
    }
}

/// A value bound as `jsonb`: `\(JSONB(text))`.
public struct JSONB: PostgresEncodable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public var postgresBind: PostgresBind { .text(text, oid: PostgresOID.jsonb) }
}
