import Foundation

/// Turns rows in COPY text format into NDJSON objects, in our process, so that building JSON
/// overlaps with compression instead of running `row_to_json` on the server.
struct CopyToJSON {
    enum Kind { case number, bool, text, bytea, timestamp }
    let names: [[UInt8]]        // `"name":` prefixes
    let kinds: [Kind]

    /// - Parameter prefix: fields written first in every object (`"record":"message",`).
    init(columns: [(String, Kind)], prefix: String = "") {
        names = columns.enumerated().map { i, c in Array(((i == 0 ? "{" + prefix : ",") + "\"\(c.0)\":").utf8) }
        kinds = columns.map(\.1)
    }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends one row (a COPY text line, with or without the newline) as a JSON object and `\n`.
    func append(row: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let b = row.bindMemory(to: UInt8.self)
        var end = b.count
        if end > 0 && b[end - 1] == 10 { end -= 1 }
        var col = 0
        var start = 0
        var i = 0
        while i <= end {
            if i == end || b[i] == 9 {
                out.append(contentsOf: names[col])
                field(UnsafeBufferPointer(rebasing: b[start..<i]), kinds[col], &out)
                col += 1
                start = i + 1
            }
            i += 1
        }
        out.append(125) // }
        out.append(10)
    }

    @inline(__always) func field(_ f: UnsafeBufferPointer<UInt8>, _ kind: Kind, _ out: inout [UInt8]) {
        if f.count == 2 && f[0] == 92 && f[1] == 78 { out.append(contentsOf: [110, 117, 108, 108]); return } // \N → null
        switch kind {
        case .number: out.append(contentsOf: f)
        case .bool: out.append(contentsOf: f.first == 116 ? Array("true".utf8) : Array("false".utf8))
        case .timestamp:
            // ISO 8601 as row_to_json writes it: 2026-11-22T22:02:52.465046+00:00.
            out.append(34)
            for c in f { out.append(c == 32 ? 84 : c) }
            if f.count >= 3 && (f[f.count - 3] == 43 || f[f.count - 3] == 45) { out.append(58); out.append(48); out.append(48) }
            out.append(34)
        case .bytea:
            // COPY text shows bytea as \\x0a0b...: keep the hex digits.
            out.append(34)
            if f.count >= 3 { out.append(contentsOf: UnsafeBufferPointer(rebasing: f[3...])) }
            out.append(34)
        case .text:
            out.append(34)
            var k = 0
            while k < f.count {
                var c = f[k]
                if c == 92 && k + 1 < f.count {       // COPY escapes
                    k += 1
                    switch f[k] {
                    case 110: c = 10
                    case 116: c = 9
                    case 114: c = 13
                    case 98: c = 8
                    case 102: c = 12
                    case 118: c = 11
                    default: c = f[k]
                    }
                }
                switch c {
                case 34: out.append(92); out.append(34)
                case 92: out.append(92); out.append(92)
                case 10: out.append(92); out.append(110)
                case 13: out.append(92); out.append(114)
                case 9: out.append(92); out.append(116)
                case 0..<32:
                    out.append(contentsOf: Array("\\u00".utf8)); out.append(CopyToJSON.hex[Int(c >> 4)]); out.append(CopyToJSON.hex[Int(c & 15)])
                default: out.append(c)
                }
                k += 1
            }
            out.append(34)
        }
    }
}
