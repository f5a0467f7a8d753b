import ArgumentParser
import ChatStore
import ChatStorePostgres
import Foundation
import Logging

/// Options every database command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("database-url"),
            help: ArgumentHelp("libpq connection string or postgres:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example: --database-url postgres://batch@db.internal/chat",
                               valueName: "url"))
    var databaseURL: String?

    @Option(name: .customLong("database-url-file"),
            help: ArgumentHelp("Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example: --database-url-file /run/secrets/chat-db",
                               valueName: "file"))
    var databaseURLFile: String?

    @Flag(name: .long, help: "Write machine-readable JSON to standard output instead of text.")
    var json = false

    @Flag(name: [.short, .long], help: "Only errors on standard error (no progress).")
    var quiet = false

    @Flag(name: [.short, .long], help: "Debug logging on standard error (server notices, statements).")
    var verbose = false

    /// A logger writing to standard error at the level the flags ask for.
    func makeLogger(_ label: String = "chatstore") -> Logger {
        makeStderrLogger(label, verbose: verbose, quiet: quiet || json)
    }

    /// Resolved connection settings (see `chatstore --help`).
    func connectionSettings() -> ConnectionSettings {
        let local = LocalCluster(directory: LocalCluster.defaultDirectory())
        let fallback: ConnectionSettings?
        if case .running = local.state { fallback = local.settings } else { fallback = nil }
        return ConnectionSettings.resolve(option: databaseURL ?? urlFromFile, fallback: fallback)
    }

    /// The first line of --database-url-file, read once.
    private var urlFromFile: String? {
        guard let path = databaseURLFile else { return nil }
        if let cached = GlobalOptions.fileURLCache[path] { return cached }
        let data = path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: path)
        let line = data.flatMap { String(data: $0, encoding: .utf8) }?.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) }
        GlobalOptions.fileURLCache[path] = line ?? ""
        return line
    }

    nonisolated(unsafe) private static var fileURLCache: [String: String] = [:]

    func validate() throws {
        if databaseURL != nil && databaseURLFile != nil { throw ValidationError("give --database-url or --database-url-file, not both") }
        if let path = databaseURLFile, path != "-", !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("--database-url-file \(path): cannot read it")
        }
    }

    /// Connects, turning a failure into exit code 69 with a message that names no password.
    /// With `schema` (every command but `migrate`), the database must be migrated to exactly
    /// this binary's latest version; otherwise one line says what to run, and the exit code is 5.
    func connect(_ logger: Logger, schema: Bool = true) throws -> PostgresConnection {
        let conn: PostgresConnection
        do {
            conn = try PostgresConnection(settings: connectionSettings(), logger: logger)
        } catch let e as PostgresError {
            printError(e.message)
            throw ExitCode(ExitCodes.unavailable)
        }
        if schema { try requireSchema(conn) }
        return conn
    }

    /// Exit 5 with one line when the schema is missing, older or newer than this binary's.
    func requireSchema(_ conn: PostgresConnection) throws {
        do {
            try SchemaCheck.require(conn)
        } catch let e as SchemaMismatch {
            printError(e.description)
            throw ExitCode(ExitCodes.schemaMismatch)
        }
    }

    /// Progress on a terminal only, never with --quiet or --json.
    var showsProgress: Bool { !quiet && !json && isatty(STDERR_FILENO) == 1 }
}

/// A logger on standard error: debug when verbose, warnings only when quiet.
func makeStderrLogger(_ label: String = "chatstore", verbose: Bool = false, quiet: Bool = false) -> Logger {
    LoggingSetup.bootstrapOnce()
    var logger = Logger(label: label)
    logger.logLevel = verbose ? .debug : (quiet ? .warning : .info)
    return logger
}

enum LoggingSetup {
    nonisolated(unsafe) private static var done = false
    static func bootstrapOnce() {
        guard !done else { return }
        done = true
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .info
            return ClearingProgress(inner: h)
        }
    }
}

/// A log handler that wipes the terminal progress line before each message.
struct ClearingProgress: LogHandler {
    var inner: StreamLogHandler
    var logLevel: Logger.Level { get { inner.logLevel } set { inner.logLevel = newValue } }
    var metadata: Logger.Metadata { get { inner.metadata } set { inner.metadata = newValue } }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }
    func log(event: LogEvent) {
        TerminalProgress.clearLine()
        inner.log(event: event)
    }
}

/// Prints `chatstore: error: MESSAGE` to standard error.
func printError(_ message: String) {
    TerminalProgress.clearLine()
    FileHandle.standardError.write(Data("chatstore: error: \(message)\n".utf8))
    ErrorReport.messages.append(message)
}

/// With `--json`, a command that fails also writes its error to standard output as one JSON
/// object, `{"error": {"message": …, "exit_code": N}}`, unless it already wrote its JSON result
/// (an audit that exits 2 with its findings). The message is also on standard error, as without
/// `--json`.
enum ErrorReport {
    nonisolated(unsafe) static var json = false
    /// `--verbose`: database errors with their SQLSTATE and statement, over several lines.
    nonisolated(unsafe) static var verbose = false
    nonisolated(unsafe) static var messages: [String] = []
    nonisolated(unsafe) static var wroteJSON = false

    /// Whether the command line asks for JSON (`--json` before any `--`).
    static func wantsJSON(_ arguments: [String]) -> Bool {
        arguments.prefix { $0 != "--" }.contains("--json")
    }

    /// Whether the command line asks for `--verbose` (or `-v`, alone or in a group such as `-qv`).
    static func wantsVerbose(_ arguments: [String]) -> Bool {
        arguments.prefix { $0 != "--" }.contains { $0 == "--verbose" || ($0.hasPrefix("-") && !$0.hasPrefix("--") && $0.contains("v")) }
    }

    static func write(message: String, exitCode: Int32) {
        guard json, !wroteJSON, exitCode != 0 else { return }
        struct Body: Encodable { var message: String; var exit_code: Int32 }
        struct Out: Encodable { var error: Body }
        try? printJSON(Out(error: Body(message: message, exit_code: exitCode)))
    }
}

/// Prints a line to standard error (progress, summaries in text mode).
func printInfo(_ message: String) {
    TerminalProgress.clearLine()
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}

/// A command's closing summary: on standard output, or on standard error when the command's
/// output file is `-` (standard output carries the data then).
func printSummary(_ line: String, output: String?) {
    if output == "-" { printInfo(line) } else { print(line) }
}

/// Refuses `--json` together with an output of `-`: both would go to standard output.
func checkStandardOutput(_ output: String?, json: Bool, flag: String = "--out") throws {
    if output == "-" && json { throw ValidationError("\(flag) - writes the data to standard output, so --json cannot also: give \(flag) a file") }
}

/// Writes a JSON value to standard output.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    enc.dateEncodingStrategy = .iso8601
    let data = try enc.encode(value)
    ErrorReport.wroteJSON = true
    TerminalProgress.clearLine()
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}

/// Runs a command body, mapping library errors to a clean message and exit code 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch let e as ValidationError {
        throw e
    } catch let e as RangeBusy {
        printError(e.description)
        throw ExitCode(ExitCodes.busy)
    } catch let e as PostgresError {
        printError(ErrorReport.verbose ? e.description : e.summary)
        throw ExitCode(e.kind == .connection ? ExitCodes.unavailable : ExitCodes.failure)
    } catch {
        printError(describe(error))
        throw ExitCode(ExitCodes.failure)
    }
}

/// An error in words. Foundation's file errors (`Error Domain=NSCocoaErrorDomain Code=4 …`)
/// become `path: reason`, the reason from the underlying POSIX error when there is one.
func describe(_ error: Error) -> String {
    let ns = error as NSError
    guard ns.domain == NSCocoaErrorDomain else { return String(describing: error) }
    let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
    var reason: String
    if let posix = ns.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(posix.code)))
    } else {
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: reason = "No such file or directory"
        case .fileReadNoPermission, .fileWriteNoPermission: reason = "Permission denied"
        case .fileWriteVolumeReadOnly: reason = "Read-only file system"
        case .fileWriteOutOfSpace: reason = "No space left on device"
        case .fileWriteFileExists: reason = "File exists"
        case .fileReadCorruptFile, .fileReadInapplicableStringEncoding: reason = "not readable as UTF-8 text"
        default: reason = ns.localizedDescription
        }
    }
    return path.map { "\($0): \(reason)" } ?? reason
}
