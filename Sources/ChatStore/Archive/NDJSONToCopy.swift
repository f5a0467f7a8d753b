/// Turns an archive's NDJSON line straight into a COPY text row, for lines laid out as
/// `CopyToJSON` writes them: every column once, in the table's column order, no whitespace.
///
/// This is restore's fast path. It builds no dictionary and no `String` per field: names are
/// compared as bytes, numbers and timestamps are copied through, text is unescaped from JSON and
/// escaped for COPY in one pass. A line laid out any other way (another order, extra fields,
/// spaces, `\u` escapes) is not converted (`convert` returns false) and goes through the general
/// JSON parser, so the fast path changes speed, never what is loaded.
struct NDJSONToCopy {
    private let names: [[UInt8]]   // `"name":`
    private let kinds: [CopyToJSON.Kind]

    init(columns: [(String, CopyToJSON.Kind)]) {
        names = columns.map { Array("\"\($0.0)\":".utf8) }
        kinds = columns.map(\.1)
    }

    /// Appends the COPY row (with its newline) for `line` to `out` and returns true, or leaves
    /// `out` as it was and returns false when the line is not in the fixed layout.
    func convert(_ line: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool {
        let mark = out.count
        let b = line.bindMemory(to: UInt8.self)
        var i = 0
        let n = b.count
        func fail() -> Bool { out.removeSubrange(mark...); return false }
        for col in 0..<names.count {
            guard i < n, b[i] == (col == 0 ? 123 : 44) else { return fail() }   // { or ,
            i += 1
            let name = names[col]
            guard n - i >= name.count else { return fail() }
            for k in 0..<name.count where b[i + k] != name[k] { return fail() }
            i += name.count
            if col > 0 { out.append(9) }
            guard i < n else { return fail() }
            let c = b[i]
            if c == 110 {                                                        // null
                guard n - i >= 4, b[i + 1] == 117, b[i + 2] == 108, b[i + 3] == 108 else { return fail() }
                out.append(92); out.append(78)
                i += 4
            } else if c == 116 || c == 102 {                                     // true / false
                let len = c == 116 ? 4 : 5
                guard kinds[col] == .bool, n - i >= len else { return fail() }
                let word: [UInt8] = c == 116 ? [116, 114, 117, 101] : [102, 97, 108, 115, 101]
                for k in 0..<len where b[i + k] != word[k] { return fail() }
                out.append(c)
                i += len
            } else if c == 34 {                                                  // "..."
                i += 1
                switch kinds[col] {
                case .number, .bool: return fail()
                case .bytea:
                    out.append(92); out.append(92); out.append(120)             // \\x
                    while i < n && b[i] != 34 {
                        let h = b[i]
                        guard (h >= 48 && h <= 57) || (h >= 97 && h <= 102) else { return fail() }
                        out.append(h); i += 1
                    }
                case .timestamp:
                    while i < n && b[i] != 34 {
                        let h = b[i]
                        guard h != 92 && h >= 32 else { return fail() }
                        out.append(h); i += 1
                    }
                case .text:
                    while i < n && b[i] != 34 {
                        var h = b[i]
                        guard h >= 32 else { return fail() }                    // not JSON: the general parser says so
                        if h == 92 {
                            guard i + 1 < n else { return fail() }
                            i += 1
                            switch b[i] {
                            case 34: h = 34
                            case 92: h = 92
                            case 47: h = 47
                            case 110: h = 10
                            case 116: h = 9
                            case 114: h = 13
                            case 98: h = 8
                            case 102: h = 12
                            default: return fail()                              // \u: the general parser
                            }
                        }
                        switch h {
                        case 92: out.append(92); out.append(92)
                        case 10: out.append(92); out.append(110)
                        case 13: out.append(92); out.append(114)
                        case 9: out.append(92); out.append(116)
                        default: out.append(h)
                        }
                        i += 1
                    }
                }
                guard i < n else { return fail() }
                i += 1                                                           // closing quote
            } else {                                                             // a number
                guard kinds[col] == .number else { return fail() }
                let start = i
                while i < n {
                    let h = b[i]
                    guard (h >= 48 && h <= 57) || h == 45 || h == 43 || h == 46 || h == 101 || h == 69 else { break }
                    out.append(h); i += 1
                }
                guard i > start else { return fail() }
            }
        }
        guard i < n, b[i] == 125 else { return fail() }                         // }
        i += 1
        while i < n && (b[i] == 13 || b[i] == 32) { i += 1 }
        guard i == n else { return fail() }
        out.append(10)
        return true
    }
}
