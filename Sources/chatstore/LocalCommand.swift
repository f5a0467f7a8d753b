import ArgumentParser
import ChatStore
import Foundation

extension ChatStoreCommand {
    struct Local: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "local",
            abstract: "Manage the private PostgreSQL cluster used by the demo and the tests.",
            discussion: Examples.text("chatstore local start --dir /tmp/chat --no-fsync", "eval \"$(chatstore local env --dir /tmp/chat)\" && psql", prefix: "The cluster lives in --dir (default: CHATSTORE_LOCAL_DIR, else a per-user data directory; /var/lib/chatstore/local as root) and listens only on a Unix socket there."),
            subcommands: [Start.self, Stop.self, Status.self, Env.self]
        )
    }
}

struct LocalOptions: ParsableArguments {
    @Option(name: .long, help: "Cluster directory (socket and data/).")
    var dir: String?

    @Flag(name: .long, help: "Write JSON to standard output.")
    var json = false

    var cluster: LocalCluster { LocalCluster(directory: dir ?? LocalCluster.defaultDirectory()) }
}

struct LocalStatusReport: Encodable {
    var directory: String
    var state: String
    var pid: Int?
    var connection: String
}

func localReport(_ c: LocalCluster) -> LocalStatusReport {
    var pid: Int?
    if case .running(let p) = c.state { pid = p }
    return LocalStatusReport(directory: c.directory, state: c.state.description, pid: pid, connection: c.settings.conninfo)
}

extension ChatStoreCommand.Local {
    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Initialize (if needed) and start the private cluster; create the chatstore database.",
            discussion: Examples.text("chatstore local start", "chatstore local start --dir /tmp/chat --no-fsync --json"))
        @OptionGroup var options: LocalOptions
        @Flag(name: .long, help: "Turn off fsync and synchronous commit (for tests and benchmarks; unsafe on a crash).")
        var noFsync = false

        func run() throws {
            try runReportingErrors {
                let logger = makeStderrLogger(quiet: options.json)
                let c = options.cluster
                let started = try c.start(options: .init(noFsync: noFsync), logger: logger)
                if options.json { try printJSON(localReport(c)) } else {
                    print("\(started ? "started" : "already running"): \(c.state) in \(c.directory)")
                    print("connect with: psql \"\(c.settings.conninfo)\"")
                }
            }
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the private cluster (fast shutdown).",
            discussion: Examples.text("chatstore local stop --dir /tmp/chat"))
        @OptionGroup var options: LocalOptions
        func run() throws {
            try runReportingErrors {
                try options.cluster.stop()
                if options.json { try printJSON(localReport(options.cluster)) } else { print("stopped") }
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show whether the private cluster is running. Exit 0 running, 1 otherwise.",
            discussion: Examples.text("chatstore local status || chatstore local start", "chatstore local status --json"))
        @OptionGroup var options: LocalOptions
        func run() throws {
            let c = options.cluster
            if options.json { try printJSON(localReport(c)) } else { print("\(c.state) in \(c.directory)") }
            if case .running = c.state { return }
            throw ExitCode(ExitCodes.failure)
        }
    }

    struct Env: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print shell exports (PGHOST, PGPORT, PGUSER, PGDATABASE) for the private cluster.",
            discussion: Examples.text("eval \"$(chatstore local env)\" && psql -c \"TABLE chat.schema_migrations\"", "chatstore local env --json"))
        @OptionGroup var options: LocalOptions
        func run() throws {
            let c = options.cluster
            if options.json {
                try printJSON(["PGHOST": c.directory, "PGPORT": String(c.port), "PGUSER": LocalCluster.superuser, "PGDATABASE": LocalCluster.databaseName])
            } else {
                print("export PGHOST='\(c.directory)' PGPORT=\(c.port) PGUSER=\(LocalCluster.superuser) PGDATABASE=\(LocalCluster.databaseName)")
            }
        }
    }
}
