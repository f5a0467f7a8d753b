import ChatStorePostgres
import Foundation
import Logging

/// A private PostgreSQL cluster in a directory of ours, for the demo and the tests.
///
/// The data directory is `DIR/data`; the server listens only on a Unix socket in `DIR` (no TCP),
/// authenticates local connections with `trust`, and keeps a log in `DIR/server.log`. When run as
/// root, `initdb` and `pg_ctl` run as the `postgres` user through `runuser`, and `DIR` is owned by
/// `postgres`.
///
/// ```swift
/// let cluster = LocalCluster(directory: LocalCluster.defaultDirectory())
/// try cluster.start(logger: logger)
/// let conn = try PostgresConnection(settings: cluster.settings)
/// ```
public struct LocalCluster: Sendable {
    /// The cluster's directory (socket and `data/`).
    public let directory: String
    /// The port number in the socket's name (`.s.PGSQL.PORT`).
    public let port: Int
    /// The database created on first start.
    public static let databaseName = "chatstore"
    /// The superuser role of the private cluster.
    public static let superuser = "postgres"

    public init(directory: String, port: Int = 5432) {
        self.directory = (directory as NSString).standardizingPath
        self.port = port
    }

    /// `CHATSTORE_LOCAL_DIR`, else `$XDG_DATA_HOME/chatstore/local` (or `~/.local/share/...`);
    /// as root, `/var/lib/chatstore/local` (the `postgres` user cannot enter root's home).
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let d = environment["CHATSTORE_LOCAL_DIR"], !d.isEmpty { return d }
        if geteuid() == 0 { return "/var/lib/chatstore/local" }
        if let x = environment["XDG_DATA_HOME"], !x.isEmpty { return x + "/chatstore/local" }
        return NSHomeDirectory() + "/.local/share/chatstore/local"
    }

    public var dataDirectory: String { directory + "/data" }
    public var logFile: String { directory + "/server.log" }

    /// Connection settings for the private cluster's `chatstore` database.
    public var settings: ConnectionSettings {
        ConnectionSettings(conninfo: "host='\(directory)' port=\(port) dbname=\(LocalCluster.databaseName) user=\(LocalCluster.superuser)",
                           source: .localCluster)
    }

    /// State of the cluster.
    public enum State: Equatable, Sendable, CustomStringConvertible {
        case notInitialized
        case stopped
        case running(pid: Int)
        public var description: String {
            switch self {
            case .notInitialized: return "not initialized"
            case .stopped: return "stopped"
            case .running(let pid): return "running (pid \(pid))"
            }
        }
    }

    /// Reads the state from the data directory and `postmaster.pid`.
    public var state: State {
        let fm = FileManager.default
        guard fm.fileExists(atPath: dataDirectory + "/PG_VERSION") else { return .notInitialized }
        guard let pidText = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let pid = Int(pidText.split(separator: "\n").first ?? "") else { return .stopped }
        if kill(pid_t(pid), 0) == 0 || errno == EPERM { return .running(pid: pid) }
        return .stopped
    }

    /// Finds the PostgreSQL server binaries: `CHATSTORE_PG_BINDIR`, the newest
    /// `/usr/lib/postgresql/N/bin`, or `PATH`.
    public static func binDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let d = environment["CHATSTORE_PG_BINDIR"], !d.isEmpty { return d }
        let base = "/usr/lib/postgresql"
        if let versions = try? FileManager.default.contentsOfDirectory(atPath: base) {
            let sorted = versions.compactMap { Int($0) }.sorted(by: >)
            for v in sorted where FileManager.default.isExecutableFile(atPath: "\(base)/\(v)/bin/pg_ctl") {
                return "\(base)/\(v)/bin"
            }
        }
        if let initdb = Subprocess.which("initdb") { return (initdb as NSString).deletingLastPathComponent }
        throw LocalClusterError("PostgreSQL server binaries not found (install postgresql-15, or set CHATSTORE_PG_BINDIR)")
    }

    private var runAsPostgres: Bool { geteuid() == 0 }

    private func run(_ tool: String, _ args: [String]) throws -> Subprocess.Output {
        let bin = try LocalCluster.binDirectory() + "/" + tool
        if runAsPostgres {
            return try Subprocess.run("/usr/sbin/runuser", ["-u", "postgres", "--", bin] + args)
        }
        return try Subprocess.run(bin, args)
    }

    /// Options for `start`.
    public struct StartOptions: Sendable {
        /// Turn off fsync and synchronous commit (tests and benchmarks of our own code only).
        public var noFsync = false
        /// `shared_buffers` setting.
        public var sharedBuffers = "256MB"
        public init(noFsync: Bool = false, sharedBuffers: String = "256MB") {
            self.noFsync = noFsync
            self.sharedBuffers = sharedBuffers
        }
    }

    /// Initializes the cluster if needed, starts it if stopped, and creates the `chatstore`
    /// database if missing. Idempotent.
    /// - Returns: true when the server was started by this call.
    @discardableResult
    public func start(options: StartOptions = StartOptions(), logger: Logger) throws -> Bool {
        let fm = FileManager.default
        if state == .notInitialized {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            chmod(directory, 0o700)
            if runAsPostgres {
                let chown = try Subprocess.run("/bin/chown", ["-R", "postgres:postgres", directory])
                guard chown.status == 0 else { throw LocalClusterError("chown \(directory) failed: \(chown.stderr)") }
            }
            logger.info("initializing a private PostgreSQL cluster in \(dataDirectory)")
            let r = try run("initdb", ["-D", dataDirectory, "-U", LocalCluster.superuser, "--auth=trust",
                                       "-E", "UTF8", "--no-locale", "--no-instructions"])
            guard r.status == 0 else { throw LocalClusterError("initdb failed (exit \(r.status)): \(r.stderr)\(r.stdout)") }
        }
        var started = false
        if case .running = state {} else {
            var opts = "-c listen_addresses='' -c unix_socket_directories='\(directory)' -c port=\(port)"
            opts += " -c shared_buffers=\(options.sharedBuffers) -c max_wal_size=4GB"
            if options.noFsync { opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" }
            let r = try run("pg_ctl", ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "-o", opts, "start"])
            guard r.status == 0 else {
                let tail = (try? String(contentsOfFile: logFile, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
                throw LocalClusterError("pg_ctl start failed (exit \(r.status)): \(r.stderr)\n\(tail)")
            }
            started = true
        }
        let admin = try PostgresConnection(settings: settings.withDatabase("postgres"), logger: logger)
        let exists = try admin.scalar(Bool.self, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = \(LocalCluster.databaseName))")
        if !exists { try admin.execute("CREATE DATABASE \(identifier: LocalCluster.databaseName)") }
        return started
    }

    /// Stops the server (fast shutdown). Does nothing when it is not running.
    public func stop() throws {
        guard case .running = state else { return }
        let r = try run("pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"])
        guard r.status == 0 else { throw LocalClusterError("pg_ctl stop failed (exit \(r.status)): \(r.stderr)") }
    }
}

/// A failure managing the private cluster.
public struct LocalClusterError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
