import Foundation

/// Turns the rows of a binary COPY (`COPY (...) TO STDOUT (FORMAT binary)`) into NDJSON objects,
/// the same text `row_to_json` writes in a UTC session (timestamps as
/// `2026-11-22T22:02:52.465046+00:00`, trailing zeros of the fraction trimmed; bytea as its hex
/// digits, as the text path writes them).
///
/// Why binary: the server's text output of a timestamp is most of its work in a receipts COPY
/// (5 timestamps a row); in binary it sends the 8-byte integer, and formatting it here is a few
/// divisions. The server's CPU per archived receipt fell from 3.3 s to 2.0 s per 2.4M rows
/// (BENCHMARKS.md), and the server is one of the two cores the export has.
///
/// Text fields must be UTF-8: in a database of another encoding the exporter selects them as
/// `convert_to(..., 'UTF8')`.
struct BinaryCopyToJSON {
    typealias Kind = CopyToJSON.Kind
    /// The `"name":` prefixes and kinds, in memory the row loop reads without a reference count.
    private final class Layout {
        let names: UnsafeMutablePointer<UInt8>
        let nameStart: UnsafeMutablePointer<Int>   // fields + 1 offsets into names
        let kinds: UnsafeMutablePointer<Kind>
        let fields: Int
        init(_ columns: [(String, Kind)], _ prefix: String) {
            let n = columns.enumerated().map { i, c in Array(((i == 0 ? "{" + prefix : ",") + "\"\(c.0)\":").utf8) }
            fields = columns.count
            names = .allocate(capacity: max(n.map(\.count).reduce(0, +), 1))
            nameStart = .allocate(capacity: fields + 1)
            kinds = .allocate(capacity: max(fields, 1))
            var off = 0
            for (i, bytes) in n.enumerated() {
                nameStart[i] = off
                (names + off).update(from: bytes, count: bytes.count)
                off += bytes.count
                kinds[i] = columns[i].1
            }
            nameStart[fields] = off
        }
        deinit { names.deallocate(); nameStart.deallocate(); kinds.deallocate() }
    }
    private let layout: Layout
    private var sawHeader = false

    /// - Parameter prefix: fields written first in every object (`"record":"message",`).
    init(columns: [(String, Kind)], prefix: String = "") {
        layout = Layout(columns, prefix)
    }

    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }

    /// Appends the rows of one CopyData message (the first carries the file header, the last
    /// the trailer) to `out`, each as a JSON object and `\n`.
    /// - Returns: the number of rows appended.
    mutating func append(message: UnsafeRawBufferPointer, to out: ByteBuffer) throws -> Int {
        guard let start = message.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        var p = UnsafePointer(start)
        let end = start + message.count
        try BinaryCopyToJSON.skipHeader(&p, end, &sawHeader)
        var rows = 0
        // Room for the worst case of this message: every byte of text escaped as \u00XX (6 bytes);
        // per row (each at least 2 + 4 bytes a field) its names, `}\n` and up to 48 bytes of
        // formatting a field (a timestamp is 8 bytes in, at most 42 out).
        let fields = layout.fields, names = layout.names, nameStart = layout.nameStart, kinds = layout.kinds
        var o = out.reserve(6 * message.count + (message.count / (2 + 4 * fields) + 1) * (nameStart[fields] + 2 + 48 * fields))
        while p < end {
            guard end - p >= 2 else { throw FormatError(description: "binary COPY row cut short") }
            let n = Int(Int16(bitPattern: UInt16(p[0]) << 8 | UInt16(p[1])))
            p += 2
            if n == -1 { break }  // trailer
            guard n == fields else { throw FormatError(description: "binary COPY row has \(n) fields, expected \(fields)") }
            for col in 0..<fields {
                guard end - p >= 4 else { throw FormatError(description: "binary COPY field cut short") }
                let len = Int(BinaryCopyToJSON.int32(p))
                p += 4
                let nb = nameStart[col + 1] - nameStart[col]
                o.update(from: names + nameStart[col], count: nb)
                o += nb
                if len < 0 {
                    o[0] = 110; o[1] = 117; o[2] = 108; o[3] = 108  // null
                    o += 4
                    continue
                }
                guard end - p >= len else { throw FormatError(description: "binary COPY field cut short") }
                switch kinds[col] {
                case .number:
                    let v: Int64
                    switch len {
                    case 8: v = BinaryCopyToJSON.int64(p)
                    case 4: v = Int64(BinaryCopyToJSON.int32(p))
                    case 2: v = Int64(Int16(bitPattern: UInt16(p[0]) << 8 | UInt16(p[1])))
                    default: throw FormatError(description: "binary COPY integer of \(len) bytes")
                    }
                    o = BinaryCopyToJSON.decimal(v, o)
                case .bool:
                    if len == 1 && p[0] != 0 {
                        o[0] = 116; o[1] = 114; o[2] = 117; o[3] = 101; o += 4
                    } else {
                        o[0] = 102; o[1] = 97; o[2] = 108; o[3] = 115; o[4] = 101; o += 5
                    }
                case .timestamp:
                    guard len == 8 else { throw FormatError(description: "binary COPY timestamp of \(len) bytes") }
                    o = BinaryCopyToJSON.timestamp(BinaryCopyToJSON.int64(p), o)
                case .bytea:
                    o[0] = 34; o += 1
                    for k in 0..<len {
                        let c = p[k]
                        o[0] = BinaryCopyToJSON.hex(c >> 4); o[1] = BinaryCopyToJSON.hex(c & 15); o += 2
                    }
                    o[0] = 34; o += 1
                case .text:
                    o[0] = 34; o += 1
                    var k = 0
                    while k < len {
                        let c = p[k]
                        if c >= 32 && c != 34 && c != 92 {
                            o[0] = c; o += 1
                        } else {
                            o[0] = 92
                            switch c {
                            case 34: o[1] = 34; o += 2
                            case 92: o[1] = 92; o += 2
                            case 10: o[1] = 110; o += 2
                            case 13: o[1] = 114; o += 2
                            case 9: o[1] = 116; o += 2
                            case 8: o[1] = 98; o += 2
                            case 12: o[1] = 102; o += 2
                            default:
                                o[1] = 117; o[2] = 48; o[3] = 48
                                o[4] = BinaryCopyToJSON.hex(c >> 4); o[5] = BinaryCopyToJSON.hex(c & 15)
                                o += 6
                            }
                        }
                        k += 1
                    }
                    o[0] = 34; o += 1
                }
                p += len
            }
            o[0] = 125; o[1] = 10; o += 2  // }\n
            rows += 1
        }
        out.commit(end: o)
        return rows
    }

    static let signature: [UInt8] = [80, 71, 67, 79, 80, 89, 10, 255, 13, 10, 0]

    /// Steps over the file header at the start of the first message: PGCOPY\n\377\r\n\0, flags
    /// (int32), the header extension's length (int32) and the extension.
    static func skipHeader(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, _ sawHeader: inout Bool) throws {
        guard !sawHeader else { return }
        guard end - p >= 19, memcmp(p, signature, 11) == 0 else {
            throw FormatError(description: "binary COPY data does not start with the PGCOPY signature")
        }
        let ext = Int(int32(p + 15))
        guard ext >= 0, end - p >= 19 + ext else { throw FormatError(description: "binary COPY header cut short") }
        p += 19 + ext
        sawHeader = true
    }

    /// Calls `body` with the fields of each row of one binary CopyData message (nil for NULL),
    /// for the queries whose rows are not turned into NDJSON as they are (the media pack).
    static func rows(of message: UnsafeRawBufferPointer, sawHeader: inout Bool, _ body: ([UnsafeRawBufferPointer?]) throws -> Void) throws {
        guard let start = message.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var p = UnsafePointer(start)
        let end = start + message.count
        try skipHeader(&p, end, &sawHeader)
        while p < end {
            guard end - p >= 2 else { throw FormatError(description: "binary COPY row cut short") }
            let n = Int(Int16(bitPattern: UInt16(p[0]) << 8 | UInt16(p[1])))
            p += 2
            if n == -1 { return }
            var fields: [UnsafeRawBufferPointer?] = []
            fields.reserveCapacity(n)
            for _ in 0..<n {
                guard end - p >= 4 else { throw FormatError(description: "binary COPY field cut short") }
                let len = Int(int32(p))
                p += 4
                if len < 0 { fields.append(nil); continue }
                guard end - p >= len else { throw FormatError(description: "binary COPY field cut short") }
                fields.append(UnsafeRawBufferPointer(start: p, count: len))
                p += len
            }
            try body(fields)
        }
    }

    /// A binary COPY bigint field.
    static func int64(_ f: UnsafeRawBufferPointer?) throws -> Int64 {
        guard let f, f.count == 8 else { throw FormatError(description: "binary COPY bigint expected") }
        return int64(f.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }

    /// A binary COPY text field (UTF-8).
    static func text(_ f: UnsafeRawBufferPointer?) -> String? { f.map { String(decoding: $0, as: UTF8.self) } }

    /// A lowercase hex digit.
    @inline(__always) static func hex(_ v: UInt8) -> UInt8 { v < 10 ? 48 + v : 87 + v }

    @inline(__always) static func int32(_ p: UnsafePointer<UInt8>) -> Int32 {
        Int32(bitPattern: UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3]))
    }

    @inline(__always) static func int64(_ p: UnsafePointer<UInt8>) -> Int64 {
        var v: UInt64 = 0
        for k in 0..<8 { v = v << 8 | UInt64(p[k]) }
        return Int64(bitPattern: v)
    }

    /// Writes `v` in decimal at `o`; returns the end.
    @inline(__always) static func decimal(_ v: Int64, _ o: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var o = o
        var m = v.magnitude
        if v < 0 { o[0] = 45; o += 1 }
        var digits = 1
        var t = m
        while t >= 10 { t /= 10; digits += 1 }
        var k = digits - 1
        repeat {
            o[k] = 48 + UInt8(m % 10)
            m /= 10
            k -= 1
        } while k >= 0
        return o + digits
    }

    /// Writes `n` zero-padded to `width` digits at `o`; returns the end.
    @inline(__always) static func padded(_ n: Int, _ width: Int, _ o: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var digits = 1
        var t = n
        while t >= 10 { t /= 10; digits += 1 }
        let w = max(width, digits)
        var m = n
        var k = w - 1
        while k >= 0 {
            o[k] = 48 + UInt8(m % 10)
            m /= 10
            k -= 1
        }
        return o + w
    }

    /// Two decimal digits of `n` (0...99) at `o`.
    @inline(__always) static func two(_ n: Int, _ o: UnsafeMutablePointer<UInt8>) {
        o[0] = 48 + UInt8(n / 10); o[1] = 48 + UInt8(n % 10)
    }

    /// A timestamptz (microseconds since 2000-01-01 UTC) as JSON, the way PostgreSQL's JSON
    /// output writes it in UTC: `"2026-11-22T22:02:52.465046+00:00"`, `"...T22:02:52+00:00"`,
    /// `"0044-03-15T00:00:00+00:00 BC"`, `"infinity"`, `"-infinity"`.
    static func timestamp(_ v: Int64, _ out: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var o = out
        o[0] = 34; o += 1
        if v == Int64.max || v == Int64.min {
            if v < 0 { o[0] = 45; o += 1 }
            for c in [105, 110, 102, 105, 110, 105, 116, 121] as [UInt8] { o[0] = c; o += 1 }  // infinity
            o[0] = 34
            return o + 1
        }
        let day: Int64 = 86_400_000_000
        var days = v / day
        var us = v % day
        if us < 0 { us += day; days -= 1 }
        // PostgreSQL's j2date (src/backend/utils/adt/datetime.c), from the Julian day number.
        var julian = Int(days) + 2_451_545 + 32044
        var quad = julian / 146_097
        let extra = (julian - quad * 146_097) * 4 + 3
        julian += 60 + quad * 3 + extra / 146_097
        quad = julian / 1461
        julian -= quad * 1461
        var y = julian * 4 / 1461
        julian = (y != 0 ? (julian + 305) % 365 : (julian + 306) % 366) + 123
        y += quad * 4
        let year = y - 4800
        quad = julian * 2141 / 65536
        let dayOfMonth = julian - 7834 * quad / 256
        let month = (quad + 10) % 12 + 1
        let y4 = year > 0 ? year : 1 - year
        if y4 < 10000 {
            o[0] = 48 + UInt8(y4 / 1000); o[1] = 48 + UInt8(y4 / 100 % 10); o[2] = 48 + UInt8(y4 / 10 % 10); o[3] = 48 + UInt8(y4 % 10)
            o += 4
        } else {
            o = padded(y4, 4, o)
        }
        let secs = Int(us / 1_000_000), frac = Int(us % 1_000_000)
        o[0] = 45; two(month, o + 1)
        o[3] = 45; two(dayOfMonth, o + 4)
        o[6] = 84; two(secs / 3600, o + 7)
        o[9] = 58; two(secs / 60 % 60, o + 10)
        o[12] = 58; two(secs % 60, o + 13)
        o += 15
        if frac != 0 {
            // Six digits, then the trailing zeros dropped (PostgreSQL's output).
            o[0] = 46
            var f = frac
            var k = 6
            while k > 0 { o[k] = 48 + UInt8(f % 10); f /= 10; k -= 1 }
            k = 6
            while o[k] == 48 { k -= 1 }
            o += k + 1
        }
        // +00:00, then " BC" for years before 1 (PostgreSQL's XSD style).
        o[0] = 43; o[1] = 48; o[2] = 48; o[3] = 58; o[4] = 48; o[5] = 48; o += 6
        if year <= 0 { o[0] = 32; o[1] = 66; o[2] = 67; o += 3 }
        o[0] = 34
        return o + 1
    }
}
