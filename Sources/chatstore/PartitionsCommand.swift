import ArgumentParser
import ChatStore
import ChatStorePostgres
import Foundation

extension ChatStoreCommand {
    struct Partitions: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "partitions",
            abstract: "Premake, inspect and repair the time partitions of messages, receipts and presence.",
            discussion: Examples.text("chatstore partitions ensure && chatstore partitions status"),
            subcommands: [Ensure.self, Status.self, RepairDefault.self, Configure.self, Retire.self]
        )
    }
}

extension PartitionGranularity: ExpressibleByArgument {}

struct PartitionOptions: ParsableArguments {
    @Option(name: .long, help: "lock_timeout of each attempt to take a table lock: the longest the application's queries wait behind one (a busy lock is retried with back-off for up to a minute, then the step fails; a bare number is seconds). Example: --lock-timeout 250ms")
    var lockTimeout = DurationArgument(seconds: 0.1)
    @Option(name: .long, help: ArgumentHelp("lock_timeout in milliseconds (old spelling of --lock-timeout).", visibility: .hidden))
    var lockTimeoutMs: Int?

    @Option(name: .long, help: "How long to wait for another upkeep run (ensure, repair-default, retire, nightly's partitions step) before giving up with exit 3. Example: --lock-wait 10m")
    var lockWait = DurationArgument(seconds: 300)

    func manager(_ global: GlobalOptions) -> PartitionManager {
        var m = PartitionManager(logger: global.makeLogger())
        m.lockWait = lockWait.duration
        m.lockTimeout = lockTimeoutMs.map { .milliseconds($0) } ?? lockTimeout.duration
        return m
    }
}

func printPartitionStatus(_ st: PartitionManager.StatusReport) {
    for t in st.tables {
        let until = t.coveredUntil.map { PostgresTimestamp.format($0) } ?? "NOT COVERED"
        print("\(t.table): \(t.partitions.count) partitions by \(t.granularity.rawValue), covered until \(until) (\(t.intervalsAhead) ahead), \(t.rowsInDefault) rows in default, \(t.totalBytes / 1024) KiB")
    }
    print("last successful upkeep: \(st.lastSuccessfulUpkeep.map { PostgresTimestamp.format($0) } ?? "never")")
    for w in st.warnings { printError(w) }
}

extension ChatStoreCommand.Partitions {
    struct Ensure: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create missing partitions from the current interval through --ahead intervals. Idempotent; exit 4 if coverage is still low afterwards.",
            discussion: Examples.text("chatstore partitions ensure", "chatstore partitions ensure --ahead 14 --lock-timeout 2s"))
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: PartitionOptions
        @Option(name: .long, help: "Intervals to premake after the current one (default: each table's premake setting).")
        var ahead: Int?

        func validate() throws {
            if let ahead, !(1...400).contains(ahead) { throw ValidationError("--ahead must be 1...400") }
        }

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                let report = try options.manager(global).ensure(conn, ahead: ahead)
                if global.json { try printJSON(report) } else if !global.quiet {
                    print(report.created.isEmpty ? "all partitions present" : "created \(report.created.count) partitions: \(report.created.joined(separator: ", "))")
                    printPartitionStatus(report.status)
                }
                if !report.status.healthy {
                    if global.quiet || global.json { report.status.warnings.forEach(printError) }
                    throw ExitCode(ExitCodes.coverageLow)
                }
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each table's partitions with range and size, coverage ahead, rows in the default partition, last upkeep. Exit 4 when coverage is low or rows sit in a default partition.",
            discussion: Examples.text("chatstore partitions status", "chatstore partitions status --all --json"))
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: PartitionOptions
        @Flag(name: .long, help: "List every partition.")
        var all = false

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                let st = try options.manager(global).status(conn)
                if global.json { try printJSON(st) } else {
                    printPartitionStatus(st)
                    if all {
                        for t in st.tables {
                            for p in t.partitions {
                                print("  \(p.name)  [\(PostgresTimestamp.format(p.from)), \(PostgresTimestamp.format(p.to)))  \(p.bytes / 1024) KiB  ~\(p.estimatedRows) rows")
                            }
                        }
                    }
                }
                if !st.healthy { throw ExitCode(ExitCodes.coverageLow) }
            }
        }
    }

    struct RepairDefault: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "repair-default",
            abstract: "Move rows out of the default partitions into proper partitions (created as needed), one transaction per partition.",
            discussion: Examples.text("chatstore partitions repair-default --lock-timeout 2s"))
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: PartitionOptions

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                let r = try options.manager(global).repairDefault(conn)
                if global.json { try printJSON(r) } else if !global.quiet {
                    if r.moved.isEmpty { print("default partitions hold no rows") }
                    for (name, n) in r.moved.sorted(by: { $0.key < $1.key }) { print("moved \(n) rows into \(name)") }
                }
            }
        }
    }

    struct Configure: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a table's partition granularity (day, week, month) or premake count; applies to partitions created afterwards.",
            discussion: Examples.text("chatstore partitions configure --table receipts --granularity week", "chatstore partitions configure --table messages --premake 14"))
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: "messages, receipts or presence_events.")
        var table: String
        @Option(name: .long, help: "day, week or month.")
        var granularity: PartitionGranularity?
        @Option(name: .long, help: "Intervals to premake ahead (1-400).")
        var premake: Int?

        func validate() throws {
            if let premake, !(1...400).contains(premake) { throw ValidationError("--premake must be between 1 and 400, got \(premake)") }
            if !["messages", "receipts", "presence_events"].contains(table) {
                throw ValidationError("--table must be messages, receipts or presence_events, got \(table)")
            }
            if granularity == nil && premake == nil { throw ValidationError("give --granularity, --premake or both") }
        }

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                try PartitionManager(logger: global.makeLogger()).configure(conn, table: table, granularity: granularity, premake: premake)
                if global.json {
                    try printJSON(["table": table, "granularity": granularity?.rawValue, "premake": premake.map(String.init)])
                } else if !global.quiet { print("updated \(table)") }
            }
        }
    }
}
