import ArgumentParser
import ChatStore
import ChatStorePostgres
import Foundation

@main
struct ChatStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatstore",
        abstract: "Run the PostgreSQL data layer of a 1:1 and group messaging service.",
        discussion: Examples.text("chatstore local start && eval \"$(chatstore local env)\"", "chatstore migrate && chatstore generate --users 1000 --days 7", "chatstore nightly --quiet --metrics-file /var/lib/node/chatstore.prom", prefix: """
        Connection: --database-url, else DATABASE_URL, else libpq's PG* variables (PGHOST, PGPORT, \
        PGUSER, PGDATABASE, PGPASSWORD, .pgpass, PGSERVICE, PGSSLMODE), else the private cluster \
        started with `chatstore local start` when it is running, else libpq's defaults.

        Exit codes: 0 ok, 1 failure, 2 anomalies found or input rejected, 3 another run holds the \
        lock, 4 partition coverage low, 5 schema mismatch, 64 usage error, 66 input is not what the command reads, 69 cannot connect. With --json, a failure also writes {"error": {"message", "exit_code"}} to standard output.
        """),
        version: ChatStoreVersion.string,
        subcommands: [Local.self, Migrate.self, Partitions.self, Generate.self, Ingest.self, Import.self, Jobs.self, NightlyRun.self, Archive.self, ComplianceExportCommand.self, ReportCommand.self, CopyIn.self, CopyOut.self]
    )

    /// Names every session after the command (`chatstore jobs unread`), so operators see who is
    /// who in `pg_stat_activity`, then runs it.
    static func main() {
        let words = CommandLine.arguments.dropFirst()
            .prefix { !$0.isEmpty && $0.allSatisfy { $0.isLowercase || $0 == "-" } && !$0.hasPrefix("-") }
            .prefix(2)
        PostgresConnection.applicationName = (["chatstore"] + words).joined(separator: " ")
        let arguments = Array(CommandLine.arguments.dropFirst())
        // After the copy above: `ps` then shows the URL with its password as asterisks.
        HidePassword.inProcessArguments()
        ErrorReport.json = ErrorReport.wantsJSON(arguments)
        ErrorReport.verbose = ErrorReport.wantsVerbose(arguments)
        let quiet = arguments.prefix { $0 != "--" }.contains { $0 == "--quiet" || ($0.hasPrefix("-") && !$0.hasPrefix("--") && $0.contains("q")) }
        TerminalProgress.start(enabled: isatty(STDERR_FILENO) == 1 && !quiet && !ErrorReport.json)
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            TerminalProgress.stop()
        } catch {
            let code = exitCode(for: error).rawValue
            let message = ErrorReport.messages.last ?? self.message(for: error)
            if !message.isEmpty { ErrorReport.write(message: message, exitCode: code) }
            exit(withError: error)
        }
    }
}
