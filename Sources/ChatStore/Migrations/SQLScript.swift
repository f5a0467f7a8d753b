import Foundation

/// One statement of a SQL script, with the line it starts on.
public struct SQLStatement: Sendable, Equatable {
    /// The statement text, without the terminating semicolon.
    public var text: String
    /// 1-based line of the statement's first non-blank character in the file.
    public var line: Int
}

/// Splits SQL scripts into statements, honouring quotes, dollar quotes and comments.
public enum SQLScript {
    /// Splits `script` on top-level semicolons. Comment-only pieces are dropped.
    public static func split(_ script: String) -> [SQLStatement] {
        let chars = Array(script.unicodeScalars)
        var out: [SQLStatement] = []
        var current = String.UnicodeScalarView()
        var line = 1
        var startLine: Int?
        var hasCode = false
        var i = 0
        func emit() {
            let text = String(current).trimmingCharacters(in: .whitespacesAndNewlines)
            if hasCode, !text.isEmpty { out.append(SQLStatement(text: text, line: startLine ?? line)) }
            current = String.UnicodeScalarView()
            startLine = nil
            hasCode = false
        }
        func mark() {
            if startLine == nil { startLine = line }
            hasCode = true
        }
        while i < chars.count {
            let c = chars[i]
            let next: Unicode.Scalar? = i + 1 < chars.count ? chars[i + 1] : nil
            if c == "-" && next == "-" {
                while i < chars.count && chars[i] != "\n" { current.append(chars[i]); i += 1 }
                continue
            }
            if c == "/" && next == "*" {
                var depth = 0
                while i < chars.count {
                    if chars[i] == "/" && i + 1 < chars.count && chars[i + 1] == "*" { depth += 1; current.append(chars[i]); current.append(chars[i + 1]); i += 2; continue }
                    if chars[i] == "*" && i + 1 < chars.count && chars[i + 1] == "/" {
                        depth -= 1; current.append(chars[i]); current.append(chars[i + 1]); i += 2
                        if depth == 0 { break }
                        continue
                    }
                    if chars[i] == "\n" { line += 1 }
                    current.append(chars[i]); i += 1
                }
                continue
            }
            if c == "'" || c == "\"" {
                mark()
                let q = c
                current.append(c); i += 1
                while i < chars.count {
                    let d = chars[i]
                    current.append(d); i += 1
                    if d == "\n" { line += 1 }
                    if d == q {
                        if i < chars.count && chars[i] == q { current.append(chars[i]); i += 1; continue }
                        break
                    }
                }
                continue
            }
            if c == "$" {
                // Dollar quote: $tag$ ... $tag$
                var j = i + 1
                while j < chars.count && (chars[j].properties.isAlphabetic || chars[j] == "_" || (j > i + 1 && ("0"..."9").contains(chars[j]))) { j += 1 }
                if j < chars.count && chars[j] == "$" {
                    mark()
                    let tag = Array(chars[i...j])
                    for t in tag { current.append(t) }
                    i = j + 1
                    while i < chars.count {
                        if chars[i] == "$" && i + tag.count <= chars.count && Array(chars[i..<(i + tag.count)]) == tag {
                            for t in tag { current.append(t) }
                            i += tag.count
                            break
                        }
                        if chars[i] == "\n" { line += 1 }
                        current.append(chars[i]); i += 1
                    }
                    continue
                }
            }
            if c == ";" {
                emit()
                i += 1
                continue
            }
            if c == "\n" { line += 1 } else if !c.properties.isWhitespace { mark() }
            current.append(c)
            i += 1
        }
        emit()
        return out
    }
}
