import Foundation

/// A JSON value of a flat event object (nested objects and arrays are kept as raw text).
public enum FlatJSONValue: Equatable, Sendable {
    case string(String)
    case number(String)
    case bool(Bool)
    case null
    case nested(String)
}

/// The fields of one parsed object, in order. Events have a dozen fields at most, so a linear
/// search beats hashing every key; a repeated key resolves to its last value, as in a dictionary.
public struct FlatObject: Sendable {
    var fields: [(key: String, value: FlatJSONValue)] = []

    /// The value of `key`, nil when absent.
    public subscript(key: String) -> FlatJSONValue? {
        var i = fields.count - 1
        while i >= 0 {
            if fields[i].key == key { return fields[i].value }
            i -= 1
        }
        return nil
    }

    /// The field names, in order (a repeated one once per occurrence).
    public var keys: [String] { fields.map(\.key) }
}

/// A fast parser for one-line JSON objects whose values are scalars (the NDJSON events), working on
/// bytes. Errors say what is wrong and at which column.
public struct FlatJSON {
    public struct ParseError: Error, CustomStringConvertible {
        public let column: Int
        public let reason: String
        public var description: String { "column \(column): \(reason)" }
    }

    /// Parses `{"k": v, ...}`. Strings must be valid UTF-8; escapes are decoded.
    public static func parse(_ line: UnsafeRawBufferPointer) throws -> FlatObject {
        var p = Parser(b: line.bindMemory(to: UInt8.self))
        return try p.object()
    }

    struct Parser {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0

        func fail(_ r: String) -> ParseError { ParseError(column: i + 1, reason: r) }

        mutating func ws() { while i < b.count, b[i] == 32 || b[i] == 9 || b[i] == 13 || b[i] == 10 { i += 1 } }

        mutating func object() throws -> FlatObject {
            ws()
            guard i < b.count, b[i] == UInt8(ascii: "{") else { throw fail("expected a JSON object") }
            i += 1
            var out = FlatObject()
            out.fields.reserveCapacity(12)
            ws()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return try end(out) }
            while true {
                ws()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a field name") }
                let key = try string()
                ws()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':' after \"\(key)\"") }
                i += 1
                ws()
                out.fields.append((key, try value()))
                ws()
                guard i < b.count else { throw fail("unterminated object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; break }
                throw fail("expected ',' or '}'")
            }
            return try end(out)
        }

        mutating func end(_ o: FlatObject) throws -> FlatObject {
            ws()
            if i != b.count { throw fail("unexpected text after the object") }
            return o
        }

        mutating func value() throws -> FlatJSONValue {
            guard i < b.count else { throw fail("expected a value") }
            switch b[i] {
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let start = i
                try skipNested(depth: 0)
                return .nested(String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self))
            default:
                let start = i
                try number()
                return .number(String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self))
            }
        }

        /// A number by RFC 8259's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        /// (no `+5`, `007`, `1-2-3`, `.5` or `5.`).
        mutating func number() throws {
            func digit() -> Bool { i < b.count && b[i] >= 48 && b[i] <= 57 }
            let start = i
            if i < b.count, b[i] == 45 { i += 1 }
            guard digit() else { throw ParseError(column: start + 1, reason: i == start ? "unexpected character" : "bad number") }
            if b[i] == 48 {
                i += 1
                if digit() { throw ParseError(column: start + 1, reason: "bad number (leading zero)") }
            } else {
                while digit() { i += 1 }
            }
            if i < b.count, b[i] == 46 {
                i += 1
                guard digit() else { throw ParseError(column: start + 1, reason: "bad number (no digit after '.')") }
                while digit() { i += 1 }
            }
            if i < b.count, b[i] == 101 || b[i] == 69 {
                i += 1
                if i < b.count, b[i] == 43 || b[i] == 45 { i += 1 }
                guard digit() else { throw ParseError(column: start + 1, reason: "bad number (no digit in the exponent)") }
                while digit() { i += 1 }
            }
            // What follows a number is a separator, the end, or white space.
            if i < b.count, !(b[i] == 44 || b[i] == 125 || b[i] == 93 || b[i] == 32 || b[i] == 9 || b[i] == 13 || b[i] == 10) {
                throw ParseError(column: start + 1, reason: "bad number")
            }
        }

        mutating func literal(_ s: StaticString) throws {
            let n = s.utf8CodeUnitCount
            guard i + n <= b.count else { throw fail("bad literal") }
            for k in 0..<n where b[i + k] != s.utf8Start[k] { throw fail("bad literal") }
            i += n
        }

        /// Checks a nested array or object by the full JSON grammar (any values inside, strings
        /// checked as top-level ones are), without keeping it. Nesting deeper than 64 is refused.
        mutating func skipNested(depth: Int) throws {
            guard depth < 64 else { throw fail("nested too deeply") }
            let open = b[i]
            let close = open == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            i += 1
            ws()
            if i < b.count, b[i] == close { i += 1; return }
            while true {
                ws()
                if open == UInt8(ascii: "{") {
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a field name") }
                    _ = try string()
                    ws()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    ws()
                }
                guard i < b.count else { throw fail("unterminated nested value") }
                switch b[i] {
                case UInt8(ascii: "{"), UInt8(ascii: "["): try skipNested(depth: depth + 1)
                default: _ = try value()
                }
                ws()
                guard i < b.count else { throw fail("unterminated nested value") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == close { i += 1; return }
                throw fail(open == UInt8(ascii: "{") ? "expected ',' or '}'" : "expected ',' or ']'")
            }
        }

        mutating func string() throws -> String {
            i += 1
            let start = i
            var simple = true
            while i < b.count, b[i] != UInt8(ascii: "\"") {
                if b[i] == UInt8(ascii: "\\") { simple = false; i += 2; continue }
                if b[i] < 32 { throw fail("control character in string") }
                i += 1
            }
            guard i < b.count else { throw fail("unterminated string") }
            let raw = UnsafeBufferPointer(rebasing: b[start..<i])
            i += 1
            if simple {
                guard let s = String(validating: raw, as: UTF8.self) else { throw ParseError(column: start + 1, reason: "invalid UTF-8 in string") }
                return s
            }
            var out: [UInt8] = []
            out.reserveCapacity(raw.count)
            var k = 0
            while k < raw.count {
                let c = raw[k]
                if c != UInt8(ascii: "\\") { out.append(c); k += 1; continue }
                guard k + 1 < raw.count else { throw ParseError(column: start + k + 1, reason: "bad escape") }
                let e = raw[k + 1]
                k += 2
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "u"):
                    func hex4(_ at: Int) -> UInt32? {
                        guard at + 4 <= raw.count else { return nil }
                        var v: UInt32 = 0
                        for c in raw[at..<(at + 4)] {
                            switch c {
                            case 48...57: v = v << 4 | UInt32(c - 48)
                            case 97...102: v = v << 4 | UInt32(c - 87)
                            case 65...70: v = v << 4 | UInt32(c - 55)
                            default: return nil
                            }
                        }
                        return v
                    }
                    guard var cp = hex4(k) else { throw ParseError(column: start + k + 1, reason: "bad \\u escape") }
                    // PostgreSQL text cannot hold NUL: refused here, with where it is.
                    if cp == 0 { throw ParseError(column: start + k - 1, reason: "\\u0000 (NUL) in a string: PostgreSQL text cannot hold it") }
                    k += 4
                    if cp >= 0xD800 && cp < 0xDC00 {
                        guard k + 6 <= raw.count, raw[k] == 92, raw[k + 1] == 117, let lo = hex4(k + 2), lo >= 0xDC00, lo < 0xE000 else {
                            throw ParseError(column: start + k + 1, reason: "unpaired surrogate")
                        }
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                        k += 6
                    }
                    guard let scalar = Unicode.Scalar(cp) else { throw ParseError(column: start + k + 1, reason: "invalid code point") }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw ParseError(column: start + k, reason: "bad escape")
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw ParseError(column: start + 1, reason: "invalid UTF-8 in string") }
            return s
        }
    }
}
