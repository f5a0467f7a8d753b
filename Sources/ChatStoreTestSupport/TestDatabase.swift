import ChatStore
import ChatStorePostgres
import Foundation
import Logging

/// Test helpers: a private cluster for the whole run and a fresh database per test.
///
/// The cluster is `CHATSTORE_TEST_DIR` (default `/tmp/chatstore-test-<uid>`), started on first use
/// if the test script did not start it already.
public enum TestDatabase {
    nonisolated(unsafe) private static var cluster: LocalCluster?
    private static let lock = NSLock()

    /// A quiet logger for tests.
    public static var logger: Logger {
        var l = Logger(label: "chatstore.test")
        l.logLevel = .warning
        return l
    }

    /// The cluster used by the tests, started if needed.
    public static func sharedCluster() throws -> LocalCluster {
        lock.lock()
        defer { lock.unlock() }
        if let cluster { return cluster }
        let env = ProcessInfo.processInfo.environment
        let dir = env["CHATSTORE_TEST_DIR"] ?? "/tmp/chatstore-test-\(geteuid())"
        let c = LocalCluster(directory: dir)
        try c.start(options: .init(noFsync: true), logger: logger)
        cluster = c
        return c
    }

    /// Settings for a named database in the test cluster.
    public static func settings(database: String) throws -> ConnectionSettings {
        try sharedCluster().settings.withDatabase(database)
    }

    /// Creates a fresh database, runs `body` with a connection to it, then drops it.
    /// On Citus when `onCitus` (by default when `CHATSTORE_TEST_TARGET=citus`).
    public static func withSettings<T>(onCitus citus: Bool = TestDatabase.onCitus,
                                       _ body: (PostgresConnection, ConnectionSettings) throws -> T) throws -> T {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        if citus { return try withCitusDatabase(String(name), body) }
        let admin = try PostgresConnection(settings: try settings(database: "postgres"), logger: logger)
        try admin.execute("CREATE DATABASE \(identifier: String(name))")
        let settings = try settings(database: String(name))
        defer {
            _ = try? admin.execute("DROP DATABASE IF EXISTS \(identifier: String(name)) WITH (FORCE)")
        }
        let conn = try PostgresConnection(settings: settings, logger: logger)
        return try body(conn, settings)
    }

    /// True when `CHATSTORE_TEST_TARGET=citus`: every test database is then made on the Citus
    /// cluster of `scripts/citus-cluster.sh` (a coordinator and two workers) and `migrated`
    /// distributes it with `migrate --citus`, so the ordinary suites run against Citus.
    public static var onCitus: Bool { ProcessInfo.processInfo.environment["CHATSTORE_TEST_TARGET"] == "citus" }

    /// Test databases on Citus get 4 shards per table (`CHATSTORE_CITUS_SHARD_COUNT`, Citus's
    /// default is 32): rows still spread over both workers, and partition DDL is 4x cheaper.
    public static var citusEnvironment: [String: String] {
        ["CHATSTORE_CITUS_SHARD_COUNT": ProcessInfo.processInfo.environment["CHATSTORE_CITUS_SHARD_COUNT"] ?? "4"]
    }

    private static func withCitusDatabase<T>(_ name: String, _ body: (PostgresConnection, ConnectionSettings) throws -> T) throws -> T {
        let script = TestPaths.packageRoot + "/scripts/citus-cluster.sh"
        let made = try runCommand(script, ["createdb", name], environment: citusEnvironment)
        guard made.status == 0 else { throw TestSetupError("citus-cluster.sh createdb: \(made.stderr)") }
        defer { _ = try? runCommand(script, ["dropdb", name]) }
        let url = try runCommand(script, ["url", name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let settings = ConnectionSettings(conninfo: url, source: .option)
        let conn = try PostgresConnection(settings: settings, logger: logger)
        return try body(conn, settings)
    }

    /// Same as `with`, for bodies that only need the connection.
    public static func with<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try withSettings { conn, _ in try body(conn) }
    }
}

/// Paths for end-to-end tests.
public enum TestPaths {
    /// The package root (from this file's location).
    public static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The `chatstore` binary: `CHATSTORE_BIN`, else next to the test bundle.
    public static var binary: String {
        if let b = ProcessInfo.processInfo.environment["CHATSTORE_BIN"], !b.isEmpty { return b }
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir.appendingPathComponent("chatstore").path,
                          dir.deletingLastPathComponent().appendingPathComponent("chatstore").path,
                          packageRoot + "/.build/debug/chatstore"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return packageRoot + "/.build/debug/chatstore"
    }

    /// A fresh temporary directory.
    public static func temporaryDirectory() throws -> String {
        let d = NSTemporaryDirectory() + "/chatstore-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

/// A test's environment could not be set up.
public struct TestSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
