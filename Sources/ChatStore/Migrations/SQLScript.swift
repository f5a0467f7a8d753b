import Foundation

/// One statement of a SQL script, with the line it starts on.
public struct SQLStatement: Sendable, Equatable {
    /// The statement text, without the terminating semicolon.
    public var text: String
    /// 1-based line of the statement's first non-blank character in the file.
    public var line: Int
}

/// Why a script cannot be split into statements.
public enum SQLScriptError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// A psql meta-command (`\i`, `\set`, `\connect`, …): only psql runs these, a server refuses them.
    case metaCommand(line: Int, command: String)
    /// A quote, dollar quote or block comment that is still open at the end of the script.
    case unterminated(line: Int, what: String)

    public var description: String {
        switch self {
        case .metaCommand(let line, let command):
            return "line \(line): psql meta-command \(command) is not SQL: chatstore sends statements to the server, which cannot run it (write it as SQL, or run this file with psql)"
        case .unterminated(let line, let what):
            return "line \(line): \(what) is never closed"
        }
    }

    public var errorDescription: String? { description }
}

/// Splits SQL scripts into statements the way psql does.
///
/// The rules are psql's (`src/fe_utils/psqlscan.l`), so a file that psql runs is split into the
/// same statements:
/// - `'…'` strings with `''` doubling, `E'…'` strings where a backslash escapes the next
///   character, `"…"` identifiers, `$tag$ … $tag$` dollar quotes (a `$` inside an identifier such
///   as `a$b` starts none), `--` comments and nested `/* /* */ */` comments;
/// - a semicolon inside parentheses ends nothing (`CREATE RULE … DO (…; …)`);
/// - in `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, semicolons between `BEGIN` and its `END`
///   (`BEGIN ATOMIC` bodies, with `CASE … END` counted inside them) end nothing;
/// - a backslash outside quotes and comments starts a psql meta-command, which is refused.
public enum SQLScript {
    /// Splits `script` on top-level semicolons. Comment-only pieces are dropped.
    /// - Throws: `SQLScriptError` for a psql meta-command or an unclosed quote or comment, with its line.
    public static func statements(_ script: String) throws(SQLScriptError) -> [SQLStatement] {
        var scanner = Scanner(Array(script.unicodeScalars))
        return try scanner.run()
    }

    /// Like `statements(_:)` for scripts known to be well formed (the embedded query files,
    /// whose test splits every one of them): a malformed script yields what was read so far.
    public static func split(_ script: String) -> [SQLStatement] {
        var scanner = Scanner(Array(script.unicodeScalars))
        return (try? scanner.run()) ?? scanner.out
    }

    private struct Scanner {
        let chars: [Unicode.Scalar]
        var out: [SQLStatement] = []
        var i = 0
        var line = 1
        var start = 0
        var startLine: Int?
        var parenDepth = 0
        var beginDepth = 0
        // psql's heuristic for CREATE [OR REPLACE] FUNCTION|PROCEDURE: the first letters of the
        // statement's first identifiers when they are one of those words.
        var identifiers: [Character] = []

        init(_ chars: [Unicode.Scalar]) { self.chars = chars }

        func at(_ k: Int) -> Unicode.Scalar? { k < chars.count ? chars[k] : nil }

        static func isIdentStart(_ c: Unicode.Scalar) -> Bool {
            c == "_" || (c.value >= 0x80) || ("a"..."z").contains(c) || ("A"..."Z").contains(c)
        }

        static func isIdentChar(_ c: Unicode.Scalar) -> Bool {
            isIdentStart(c) || ("0"..."9").contains(c) || c == "$"
        }

        mutating func mark() { if startLine == nil { startLine = line } }

        mutating func emit(upTo end: Int) {
            if let first = startLine {
                var text = String(String.UnicodeScalarView(chars[start..<end]))
                text = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !text.isEmpty { out.append(SQLStatement(text: text, line: first)) }
            }
            startLine = nil
            parenDepth = 0
            beginDepth = 0
            identifiers = []
        }

        /// Skips to just past `close`, counting lines; throws when the script ends first.
        mutating func skipQuoted(close: Unicode.Scalar, backslashEscapes: Bool, what: String) throws(SQLScriptError) {
            let opened = line
            while let d = at(i) {
                i += 1
                if d == "\n" { line += 1 }
                if backslashEscapes && d == "\\" {
                    if at(i) == "\n" { line += 1 }
                    i += 1
                    continue
                }
                if d == close {
                    if at(i) == close { i += 1; continue }
                    return
                }
            }
            throw .unterminated(line: opened, what: what)
        }

        mutating func identifier(_ word: String) {
            let lower = word.lowercased()
            if ["create", "function", "procedure", "or", "replace"].contains(lower) {
                identifiers.append(lower.first!)
            } else {
                identifiers.append(" ")
            }
            let id = identifiers + Array(repeating: " ", count: 4)
            let isRoutine = id[0] == "c" && (id[1] == "f" || id[1] == "p" || (id[1] == "o" && id[2] == "r" && (id[3] == "f" || id[3] == "p")))
            guard isRoutine, parenDepth == 0 else { return }
            switch lower {
            case "begin": beginDepth += 1
            case "case": if beginDepth >= 1 { beginDepth += 1 }
            case "end": if beginDepth > 0 { beginDepth -= 1 }
            default: break
            }
        }

        mutating func run() throws(SQLScriptError) -> [SQLStatement] {
            while let c = at(i) {
                let next = at(i + 1)
                if c == "-" && next == "-" {
                    while let d = at(i), d != "\n" { i += 1 }
                    continue
                }
                if c == "/" && next == "*" {
                    let opened = line
                    var depth = 0
                    var closed = false
                    while let d = at(i) {
                        if d == "/" && at(i + 1) == "*" { depth += 1; i += 2; continue }
                        if d == "*" && at(i + 1) == "/" {
                            depth -= 1; i += 2
                            if depth == 0 { closed = true; break }
                            continue
                        }
                        if d == "\n" { line += 1 }
                        i += 1
                    }
                    if !closed { throw .unterminated(line: opened, what: "a /* comment") }
                    continue
                }
                if c == "\n" { line += 1; i += 1; continue }
                if c.properties.isWhitespace { i += 1; continue }
                if startLine == nil { start = i }
                mark()
                switch c {
                case "'":
                    i += 1
                    try skipQuoted(close: "'", backslashEscapes: false, what: "a '…' string")
                case "\"":
                    i += 1
                    try skipQuoted(close: "\"", backslashEscapes: false, what: "a \"…\" identifier")
                case "\\":
                    var j = i + 1
                    while let d = at(j), Self.isIdentChar(d) || d == "?" || d == "!" { j += 1 }
                    throw .metaCommand(line: line, command: String(String.UnicodeScalarView(chars[i..<max(j, i + 1)])))
                case "$":
                    var j = i + 1
                    if let d = at(j), Self.isIdentStart(d) {
                        while let d = at(j), Self.isIdentChar(d), d != "$" { j += 1 }
                    }
                    if at(j) == "$" {
                        let tag = Array(chars[i...j])
                        let opened = line
                        i = j + 1
                        var closed = false
                        while let d = at(i) {
                            if d == "$" && i + tag.count <= chars.count && Array(chars[i..<(i + tag.count)]) == tag {
                                i += tag.count
                                closed = true
                                break
                            }
                            if d == "\n" { line += 1 }
                            i += 1
                        }
                        if !closed { throw .unterminated(line: opened, what: "dollar quote \(String(String.UnicodeScalarView(tag)))") }
                    } else {
                        i += 1
                        while let d = at(i), ("0"..."9").contains(d) { i += 1 }
                    }
                case "(":
                    parenDepth += 1; i += 1
                case ")":
                    if parenDepth > 0 { parenDepth -= 1 }
                    i += 1
                case ";":
                    i += 1
                    if parenDepth == 0 && beginDepth == 0 { emit(upTo: i - 1) }
                default:
                    if Self.isIdentStart(c) {
                        var j = i + 1
                        while let d = at(j), Self.isIdentChar(d) { j += 1 }
                        let word = String(String.UnicodeScalarView(chars[i..<j]))
                        i = j
                        if at(i) == "'" && (word == "E" || word == "e") {
                            i += 1
                            try skipQuoted(close: "'", backslashEscapes: true, what: "an E'…' string")
                        } else if at(i) == "&" && (word == "U" || word == "u") && (at(i + 1) == "'" || at(i + 1) == "\"") {
                            // U&'…' and U&"…": standard quoting; the quote is read next.
                            i += 1
                        } else if at(i) == "'" && ["b", "x", "n"].contains(word.lowercased()) {
                            // B'…', X'…', N'…': a string read next, not an identifier.
                        } else {
                            identifier(word)
                        }
                    } else if ("0"..."9").contains(c) {
                        while let d = at(i), Self.isIdentChar(d) || d == "." { i += 1 }
                    } else {
                        i += 1
                    }
                }
            }
            emit(upTo: chars.count)
            return out
        }
    }
}
