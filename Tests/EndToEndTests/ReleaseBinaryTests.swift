import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct ReleaseBinaryTests {
    /// The binary the test script copied alone into an empty directory (the debug binary when the
    /// tests run outside the script, which checks the same embedding).
    var binary: String { ProcessInfo.processInfo.environment["CHATSTORE_RELEASE_BIN"] ?? TestPaths.binary }

    @Test func aBinaryAloneInAnotherDirectoryMigratesADatabase() throws {
        try TestDatabase.withSettings { conn, settings in
            let r = try runCommand(binary, ["migrate", "--json", "--database-url", settings.conninfo])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT max(version) FROM chat.schema_migrations") >= 2)
            let s = try runCommand(binary, ["migrate", "status", "--database-url", settings.conninfo])
            #expect(s.status == 0)
            #expect(s.stdout.contains("0001_schema_v1.sql"))
        }
    }

    @Test func helpExplainsEveryCommand() throws {
        for cmd in [[], ["migrate"], ["migrate", "status"], ["partitions", "ensure"], ["local", "start"], ["copy-out"]] {
            let r = try runCommand(binary, cmd + ["--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("USAGE"), "\(cmd)")
        }
    }

    @Test func badFlagsExitWithUsageCodeAndUnreachableServerWith69() throws {
        let r = try runCommand(binary, ["partitions", "ensure", "--ahead", "0"])
        #expect(r.status == 64)
        let c = try runCommand(binary, ["migrate", "status", "--database-url", "postgresql://nobody:secretpw@127.0.0.1:1/x?connect_timeout=2"])
        #expect(c.status == 69)
        #expect(!c.stderr.contains("secretpw"))
    }
}
