import ChatStorePostgres
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Hides a password given in `--database-url` from other local users.
///
/// Process arguments are world-readable (`ps`, `/proc/PID/cmdline`). At startup, before anything
/// connects, the password's characters in the process's own argument memory are overwritten
/// with `*` (what PostgreSQL's and MySQL's clients do), so `ps` shows
/// `postgres://app:********@db/chat`. The parsed copy keeps the real value. A window of
/// microseconds between exec and this remains: `--database-url-file`, `DATABASE_URL`, `.pgpass`
/// or `PGPASSFILE` keep the password out of the arguments entirely.
enum HidePassword {
    /// Overwrites passwords in the `--database-url` values of this process's arguments.
    /// - Returns: true when one was found (and hidden).
    @discardableResult
    static func inProcessArguments() -> Bool {
        let argc = Int(CommandLine.argc)
        let argv = CommandLine.unsafeArgv
        var found = false
        var i = 1
        while i < argc {
            guard let arg = argv[i] else { i += 1; continue }
            let text = String(cString: arg)
            if text == "--" { break }
            var target: UnsafeMutablePointer<CChar>?
            var offset = 0
            if text == "--database-url", i + 1 < argc {
                target = argv[i + 1]
                i += 1
            } else if text.hasPrefix("--database-url=") {
                target = arg
                offset = "--database-url=".utf8.count
            }
            if let target {
                let length = strlen(target)
                let bytes = (offset..<length).map { UInt8(bitPattern: target[$0]) }
                for r in ConnectionSettings.passwordRanges(in: bytes) {
                    found = true
                    for k in r { target[offset + k] = CChar(UInt8(ascii: "*")) }
                }
            }
            i += 1
        }
        return found
    }
}
