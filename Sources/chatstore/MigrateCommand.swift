import ArgumentParser
import ChatStore
import ChatStorePostgres
import Foundation

struct MigrationSource: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Read migrations from this directory instead of the ones built into the binary.", valueName: "dir"))
    var migrationsDir: String?

    func migrator(_ global: GlobalOptions, lockWait: DurationArgument = DurationArgument(seconds: 300)) throws -> Migrator {
        let migrations = try migrationsDir.map { try Migration.load(directory: $0) } ?? Migration.embedded()
        var m = try Migrator(migrations: migrations, logger: global.makeLogger())
        m.lockWait = lockWait.duration
        return m
    }
}

/// Maps migration refusals to exit code 5 and failures to 1.
func runMigrationCommand(_ body: () throws -> Void) throws {
    try runReportingErrors {
        do { try body() } catch let e as MigrationError {
            printError(ErrorReport.verbose ? e.description : e.summary)
            switch e {
            case .checksumMismatch, .unknownVersion: throw ExitCode(ExitCodes.schemaMismatch)
            case .lockTimeout: throw ExitCode(ExitCodes.busy)
            case .unknownTarget: throw ExitCode(ExitCodes.usage)
            case .refused: throw ExitCode(ExitCodes.schemaMismatch)
            default: throw ExitCode(ExitCodes.failure)
            }
        }
    }
}

extension ChatStoreCommand {
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "migrate",
            abstract: "Apply, inspect and plan schema migrations.",
            discussion: """
            Migrations are versioned SQL files built into the binary (Migrations/ in the source tree). \
            `chatstore migrate` applies pending ones under a session advisory lock, each in its own \
            transaction (files marked `-- chatstore:no-transaction` run statement by statement and resume \
            after a failure). An edited applied migration or an unknown applied version is refused (exit 5).

            Examples:
              chatstore migrate status --check || chatstore migrate
              chatstore migrate plan --offline | psql -v ON_ERROR_STOP=1
              chatstore migrate baseline --version 7    # adopt the database psql built
            """,
            subcommands: [Apply.self, Status.self, Plan.self, Baseline.self],
            defaultSubcommand: Apply.self
        )
    }
}

extension ChatStoreCommand.Migrate {
    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "apply", abstract: "Apply pending migrations (the default).",
            discussion: Examples.text("chatstore migrate", "chatstore migrate --to 3 --lock-wait 10m", "chatstore migrate --citus"))
        @OptionGroup var global: GlobalOptions
        @OptionGroup var source: MigrationSource
        @Option(name: .long, help: "Stop after this version.")
        var to: Int?
        @Option(name: .long, help: "How long to wait for another migrator's lock before giving up (exit 3; a bare number is seconds). Example: --lock-wait 10m")
        var lockWait = DurationArgument(seconds: 300)
        @Flag(name: .long, help: "After migrating, distribute the tables with Citus (requires the citus extension; idempotent). Only with the latest version, so not with --to. Example: chatstore migrate --citus")
        var citus = false

        func validate() throws {
            if citus && to != nil {
                throw ValidationError("--citus distributes every table of the latest schema; run `chatstore migrate --to \(to!)` without --citus, or migrate to the latest version with --citus")
            }
        }

        func run() throws {
            try runMigrationCommand {
                let logger = global.makeLogger()
                let conn = try global.connect(logger, schema: false)
                let migrator = try source.migrator(global, lockWait: lockWait)
                let report = try migrator.migrate(connection: conn, to: to)
                var citusDone: [String] = []
                if citus { citusDone = try CitusPlan.apply(conn, latestVersion: migrator.migrations.last?.version) }
                if global.json {
                    struct Out: Encodable { var report: Migrator.Report; var citus: [String] }
                    try printJSON(Out(report: report, citus: citusDone))
                } else if !global.quiet {
                    if report.applied.isEmpty && report.resumed.isEmpty {
                        print("database is up to date at version \(report.toVersion)")
                    } else {
                        print("migrated from version \(report.fromVersion) to \(report.toVersion): applied \(report.applied.map(String.init).joined(separator: ", "))\(report.resumed.isEmpty ? "" : "; resumed \(report.resumed.map(String.init).joined(separator: ", "))") in \(String(format: "%.2f", report.seconds)) s")
                    }
                    for s in citusDone { print(s) }
                }
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List applied and pending migrations with checksums. Exit 5 when the database does not match the files.",
            discussion: """
            Examples:
              chatstore migrate status
              chatstore migrate status --check || chatstore migrate   # gate a deploy
            """)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var source: MigrationSource
        @Flag(name: .long, help: "Exit 5 when migrations are pending (or partly applied), so a pipeline can gate on it. Without it, pending migrations exit 0. Example: chatstore migrate status --check")
        var check = false

        func run() throws {
            try runMigrationCommand {
                let conn = try global.connect(global.makeLogger(), schema: false)
                let st = try source.migrator(global).status(connection: conn)
                if global.json { try printJSON(st) } else {
                    print("current version \(st.currentVersion), latest \(st.latestVersion), plan sha256 \(st.planChecksum)")
                    for e in st.entries {
                        let when = e.appliedAt.map { PostgresTimestamp.format($0) } ?? "-"
                        var line = "\(String(format: "%04d", e.version))  \(e.state.padding(toLength: 8, withPad: " ", startingAt: 0))  \(e.checksum.prefix(16))  \(when)  \(e.file)"
                        if !e.transactional { line += "  [no-transaction, \(e.stepsDone ?? 0)/\(e.steps) steps]" }
                        print(line)
                    }
                    for p in st.problems { printError(p) }
                }
                if !st.problems.isEmpty { throw ExitCode(ExitCodes.schemaMismatch) }
                if check && !st.pending.isEmpty {
                    if !global.json { printError("\(st.pending.count) migration(s) pending: \(st.pending.map(String.init).joined(separator: ", ")); run `chatstore migrate`") }
                    throw ExitCode(ExitCodes.schemaMismatch)
                }
            }
        }
    }

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the SQL that `migrate` would run, without running it.",
            discussion: Examples.text("chatstore migrate plan", "chatstore migrate plan --offline > schema.sql", "chatstore migrate plan --json"))
        @OptionGroup var global: GlobalOptions
        @OptionGroup var source: MigrationSource
        @Option(name: .long, help: "Stop after this version.")
        var to: Int?
        @Flag(name: .long, help: "Also print the Citus distribution statements.")
        var citus = false
        @Flag(name: .long, help: "Plan against an empty database without connecting (every migration is pending).")
        var offline = false

        func run() throws {
            try runMigrationCommand {
                let migrator = try source.migrator(global)
                let todo: [Migration]
                if offline {
                    todo = migrator.migrations.filter { to == nil || $0.version <= to! }
                } else {
                    let conn = try global.connect(global.makeLogger(), schema: false)
                    todo = try migrator.plan(connection: conn, to: to)
                }
                if global.json {
                    struct Item: Encodable { var version: Int; var file: String; var checksum: String; var transactional: Bool; var statements: [String] }
                    struct Out: Encodable { var migrations: [Item]; var citus: [String] }
                    try printJSON(Out(migrations: todo.map { Item(version: $0.version, file: $0.fileName, checksum: $0.checksum, transactional: $0.isTransactional, statements: $0.statements.map(\.text)) },
                                      citus: citus ? CitusPlan.statements : []))
                    return
                }
                if todo.isEmpty { print("-- nothing to apply") }
                for m in todo {
                    print("-- \(m.fileName) (version \(m.version), sha256 \(m.checksum))\(m.isTransactional ? "" : " — runs statement by statement, outside a transaction")")
                    if m.isTransactional { print("BEGIN;") }
                    for s in m.statements { print("-- \(m.fileName):\(s.line)\n\(s.text);") }
                    if m.isTransactional { print("COMMIT;") }
                    print("")
                }
                if citus {
                    print("-- Citus distribution (chatstore migrate --citus)")
                    for s in CitusPlan.statements { print(s) }
                }
            }
        }
    }

    struct Baseline: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Adopt a database whose schema was built without chatstore: record migrations up to a version as applied, without running them.",
            discussion: """
            For a database built from `chatstore migrate plan --offline | psql` (or restored from a dump \
            that lost chat.schema_migrations). Refused (exit 5, nothing recorded) when the database \
            already has migration history or lacks a table those migrations create. Later migrations \
            are then applied by `chatstore migrate` as usual.

            Examples:
              chatstore migrate plan --offline --to 3 | psql -v ON_ERROR_STOP=1
              chatstore migrate baseline --version 3
              chatstore migrate baseline --version 7 --json
            """)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var source: MigrationSource
        @Option(name: .long, help: "The version the database's schema is at. Example: --version 3")
        var version: Int
        @Option(name: .long, help: "How long to wait for another migrator's lock before giving up (exit 3). Example: --lock-wait 10m")
        var lockWait = DurationArgument(seconds: 300)

        func run() throws {
            try runMigrationCommand {
                let conn = try global.connect(global.makeLogger(), schema: false)
                let report = try source.migrator(global, lockWait: lockWait).baseline(connection: conn, version: version)
                if global.json { try printJSON(report) } else if !global.quiet {
                    print("baseline at version \(report.version): recorded \(report.recorded.map(String.init).joined(separator: ", ")) as applied; run `chatstore migrate` for later ones")
                }
            }
        }
    }
}
