import Foundation

/// Where a connection goes: a libpq connection string (URL or `key=value` form) or nothing, in
/// which case libpq's own defaults apply (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
/// `PGPASSWORD`, `.pgpass`, `PGSERVICE`, `PGSSLMODE`, ...).
public struct ConnectionSettings: Sendable, CustomStringConvertible {
    /// Where the settings came from, for messages.
    public enum Source: String, Sendable {
        case option = "--database-url"
        case databaseURL = "DATABASE_URL"
        case libpqEnvironment = "PG* environment"
        case libpqDefaults = "libpq defaults"
        case localCluster = "private cluster"
    }

    /// The connection string passed to libpq (may hold a password: never print it).
    public let conninfo: String
    public let source: Source

    public init(conninfo: String, source: Source) {
        self.conninfo = conninfo
        self.source = source
    }

    /// The libpq environment variables that count as "a connection setting was given".
    public static let libpqEnvironmentKeys = [
        "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPASSFILE",
        "PGSERVICE", "PGSERVICEFILE", "PGSSLMODE", "PGOPTIONS",
    ]

    /// Resolves settings in order: the explicit option, `DATABASE_URL`, any `PG*` variable (libpq
    /// reads them itself), then `fallback` (the private cluster, when running), then libpq defaults.
    public static func resolve(option: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                               fallback: ConnectionSettings? = nil) -> ConnectionSettings {
        if let option, !option.isEmpty { return ConnectionSettings(conninfo: option, source: .option) }
        if let url = environment["DATABASE_URL"], !url.isEmpty { return ConnectionSettings(conninfo: url, source: .databaseURL) }
        if libpqEnvironmentKeys.contains(where: { !(environment[$0] ?? "").isEmpty }) {
            return ConnectionSettings(conninfo: "", source: .libpqEnvironment)
        }
        if let fallback { return fallback }
        return ConnectionSettings(conninfo: "", source: .libpqDefaults)
    }

    /// Returns the same settings pointing at another database name (keeps host, user, password).
    public func withDatabase(_ name: String) -> ConnectionSettings {
        let quoted = "'" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        if conninfo.hasPrefix("postgres://") || conninfo.hasPrefix("postgresql://") {
            // Let libpq combine: a URL followed by key=value is not allowed, so convert the db path.
            var comps = URLComponents(string: conninfo)
            comps?.path = "/" + name
            if let s = comps?.string { return ConnectionSettings(conninfo: s, source: source) }
        }
        return ConnectionSettings(conninfo: conninfo.isEmpty ? "dbname=\(quoted)" : conninfo + " dbname=\(quoted)", source: source)
    }

    /// The ranges (byte offsets) of password values in one connection string: the password of
    /// a URL's user info (`scheme://user:PASSWORD@host`), a `password=` query parameter, or a
    /// `password=` keyword (quoted or not).
    public static func passwordRanges(in bytes: [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        let s = String(decoding: bytes, as: UTF8.self)
        if s.hasPrefix("postgres://") || s.hasPrefix("postgresql://") {
            let start = s.hasPrefix("postgres://") ? 11 : 13
            let authorityEnd = bytes[start...].firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }) ?? bytes.count
            if let at = bytes[start..<authorityEnd].lastIndex(of: UInt8(ascii: "@")),
               let colon = bytes[start..<at].firstIndex(of: UInt8(ascii: ":")), colon + 1 < at {
                out.append((colon + 1)..<at)
            }
            // password=... among the query parameters
            if let q = bytes.firstIndex(of: UInt8(ascii: "?")) {
                var i = q + 1
                while i < bytes.count {
                    let end = bytes[i...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.count
                    let key = Array("password=".utf8)
                    if end - i > key.count, Array(bytes[i..<(i + key.count)]) == key { out.append((i + key.count)..<end) }
                    i = end + 1
                }
            }
            return out
        }
        // key=value form: password = value, value possibly 'quoted' with \' and \\ escapes.
        var i = 0
        while i < bytes.count {
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
            let keyStart = i
            while i < bytes.count, bytes[i] != UInt8(ascii: "="), bytes[i] != UInt8(ascii: " ") { i += 1 }
            let key = String(decoding: bytes[keyStart..<i], as: UTF8.self)
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
            guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else { continue }
            i += 1
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
            let valueStart: Int, valueEnd: Int
            if i < bytes.count, bytes[i] == UInt8(ascii: "'") {
                i += 1
                valueStart = i
                while i < bytes.count, bytes[i] != UInt8(ascii: "'") { if bytes[i] == UInt8(ascii: "\\") { i += 1 }; i += 1 }
                valueEnd = min(i, bytes.count)
                i += 1
            } else {
                valueStart = i
                while i < bytes.count, bytes[i] != UInt8(ascii: " ") { i += 1 }
                valueEnd = i
            }
            if key == "password", valueEnd > valueStart { out.append(valueStart..<valueEnd) }
        }
        return out
    }

    /// A description safe to print: the source and host/port/database/user, never a password.
    public var redactedDescription: String {
        var parts: [String] = []
        for (k, v) in ConnectionSettings.parseKeyValues(conninfo) where ["host", "port", "dbname", "user"].contains(k) {
            parts.append("\(k)=\(v)")
        }
        return parts.isEmpty ? "from \(source.rawValue)" : "from \(source.rawValue): " + parts.joined(separator: " ")
    }

    public var description: String { redactedDescription }

    /// Parses a URL or `key=value` conninfo into pairs (best effort, for redacted display only).
    static func parseKeyValues(_ s: String) -> [(String, String)] {
        if s.hasPrefix("postgres://") || s.hasPrefix("postgresql://"), let c = URLComponents(string: s) {
            var out: [(String, String)] = []
            if let h = c.host, !h.isEmpty { out.append(("host", h)) }
            if let p = c.port { out.append(("port", String(p))) }
            let db = c.path.drop(while: { $0 == "/" })
            if !db.isEmpty { out.append(("dbname", String(db))) }
            if let u = c.user { out.append(("user", u)) }
            for q in c.queryItems ?? [] where q.name != "password" { out.append((q.name, q.value ?? "")) }
            return out
        }
        var out: [(String, String)] = []
        for token in s.split(separator: " ") {
            let kv = token.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] != "password" { out.append((String(kv[0]), String(kv[1]))) }
        }
        return out
    }
}
