import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

/// Errors an operator meets around the happy path: one line on standard error that says what to
/// do, and an exit code that means something.
@Suite struct CommandErrorTests {
    /// Commands that need the schema, with what they need besides the connection.
    static func commands(_ dir: String) -> [[String]] {
        [["nightly", "--quiet"], ["jobs", "unread"], ["jobs", "receipts"], ["partitions", "status"], ["archive", "list"],
         ["report", "--days", "3", "--out", dir + "/r.html"], ["export", "--user", "1", "--out", dir + "/u.ndjson.zst"],
         ["ingest", dir + "/none.ndjson"], ["generate", "--users", "10", "--days", "1"]]
    }

    func expectOneLine(_ r: CommandResult, status: Int32, containing text: String, _ what: String) {
        #expect(r.status == status, "\(what): exit \(r.status), \(r.stderr)")
        let lines = r.stderr.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count == 1, "\(what): \(r.stderr)")
        #expect(r.stderr.contains(text), "\(what): \(r.stderr)")
        #expect(!r.stderr.contains("SQLSTATE"), "\(what): \(r.stderr)")
    }

    @Test func anUnmigratedOlderOrNewerSchemaIsRefusedByEveryCommandThatNeedsIt() throws {
        try TestDatabase.withSettings { conn, settings in
            let dir = try TestPaths.temporaryDirectory()
            try "".write(toFile: dir + "/none.ndjson", atomically: true, encoding: .utf8)
            for c in Self.commands(dir) {
                let r = try runCommand(TestPaths.binary, c + ["--database-url", settings.conninfo])
                expectOneLine(r, status: 5, containing: "run `chatstore migrate` first", "unmigrated: \(c.joined(separator: " "))")
            }
            let m = try runCommand(TestPaths.binary, ["migrate", "--quiet", "--database-url", settings.conninfo])
            #expect(m.status == 0, "\(m.stderr)")
            let latest = try conn.scalar(Int.self, "SELECT max(version) FROM chat.schema_migrations")
            // Older: the last migration not applied (as a binary newer than the database sees it).
            try conn.execute("UPDATE chat.schema_migrations SET completed = false WHERE version = \(latest)")
            for c in Self.commands(dir).prefix(3) {
                let r = try runCommand(TestPaths.binary, c + ["--database-url", settings.conninfo])
                expectOneLine(r, status: 5, containing: "at version \(latest - 1), this chatstore needs \(latest)", "older: \(c.joined(separator: " "))")
            }
            try conn.execute("UPDATE chat.schema_migrations SET completed = true WHERE version = \(latest)")
            // Newer: a migration this binary does not know.
            try conn.execute("""
                INSERT INTO chat.schema_migrations (version, file, checksum, transactional, completed, tool_version)
                VALUES (900, '0900_future.sql', 'x', true, true, '99')
                """)
            for c in Self.commands(dir).prefix(3) {
                let r = try runCommand(TestPaths.binary, c + ["--database-url", settings.conninfo])
                expectOneLine(r, status: 5, containing: "newer than this chatstore knows", "newer: \(c.joined(separator: " "))")
            }
            try conn.execute("DELETE FROM chat.schema_migrations WHERE version = 900")
            let ok = try runCommand(TestPaths.binary, ["partitions", "status", "--database-url", settings.conninfo])
            #expect(ok.status == 0 || ok.status == 4, "\(ok.stderr)")
        }
    }

    @Test func commonMistakesGetOneLineThatSaysWhatToDo() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 20, days: 1)
            let again = try runCommand(TestPaths.binary, ["generate", "--users", "10", "--days", "1", "--database-url", settings.conninfo])
            expectOneLine(again, status: 1, containing: "already holds users", "generate into a database with data")
            let premake = try runCommand(TestPaths.binary, ["partitions", "configure", "--table", "messages", "--premake", "0", "--database-url", settings.conninfo])
            #expect(premake.status == 64 && premake.stderr.contains("between 1 and 400"), "\(premake.stderr)")
            // Durations take units everywhere; old spellings still work; an age needs a unit.
            for args in [["jobs", "unread", "--lock-wait", "500ms", "--lock-timeout", "2s", "--statement-timeout", "10m"],
                         ["jobs", "unread", "--lock-wait", "1", "--lock-timeout-ms", "2000", "--statement-timeout", "600"],
                         ["jobs", "reconcile", "--grace", "10m", "--max-age", "2w", "--backoff-base", "30s"],
                         ["jobs", "reconcile", "--grace-seconds", "600", "--max-age-days", "14", "--base-seconds", "30"],
                         ["partitions", "ensure", "--lock-timeout", "1500ms"]] {
                let r = try runCommand(TestPaths.binary, args + ["--quiet", "--database-url", settings.conninfo])
                #expect(r.status == 0 || r.status == 4, "\(args.joined(separator: " ")): \(r.stderr)")
            }
            let bad = try runCommand(TestPaths.binary, ["jobs", "unread", "--lock-wait", "5x", "--database-url", settings.conninfo])
            #expect(bad.status == 64, "\(bad.stderr)")
            let bare = try runCommand(TestPaths.binary, ["partitions", "retire", "--older-than", "90", "--archive-dir", "/tmp/x", "--database-url", settings.conninfo])
            #expect(bare.status == 64 && bare.stderr.contains("has no unit: write 90d"), "\(bare.stderr)")
            let down = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--database-url", "host=/nonexistent dbname=x"])
            expectOneLine(down, status: 69, containing: "could not connect", "no server")
            // A role without privileges on the schema is told which grant it needs.
            let role = "nogrant_\(UUID().uuidString.prefix(6).lowercased())"
            try conn.execute(SQL(unsafeRaw: "CREATE ROLE \(role) LOGIN"))
            defer { _ = try? conn.execute(SQL(unsafeRaw: "DROP ROLE IF EXISTS \(role)")) }
            let denied = try runCommand(TestPaths.binary, ["jobs", "unread", "--database-url", settings.conninfo + " user=\(role)"])
            expectOneLine(denied, status: 5, containing: "GRANT chatstore_batch TO \(role)", "a role without grants")
        }
    }

    /// `-` is standard input or output wherever a file is taken (the summary moves to standard
    /// error then); `--json` failures are a JSON object on standard output with the exit code;
    /// `--verbose` logs each statement with its duration but never a bound value; database and
    /// file system errors are one line in words, the SQLSTATE and statement only with --verbose.
    @Test func standardStreamsJSONErrorsAndVerboseStatements() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 20, days: 1)
            let url = ["--database-url", settings.conninfo]
            let dir = try TestPaths.temporaryDirectory()
            // Ingest from standard input, rejects to standard output.
            let input = dir + "/in.ndjson"
            try "{\"type\":\"user\",\"user_id\":424242,\"handle\":\"stdin_user\"}\n{\"type\":\"user\"}\n".write(toFile: input, atomically: true, encoding: .utf8)
            let ingest = try runCommand(TestPaths.binary, ["ingest", "-", "--reject-file", "-"] + url, stdinPath: input)
            #expect(ingest.status == 2, "\(ingest.stderr)")
            #expect(ingest.stdout.hasPrefix("-:2\tmissing field"), "\(ingest.stdout)")
            #expect(ingest.stderr.contains("ingested 2 lines: 1 accepted, 1 rejected"), "\(ingest.stderr)")
            #expect(try conn.scalar(String.self, "SELECT handle FROM chat.users WHERE user_id = 424242") == "stdin_user")
            // Export to standard output: the data there, the summary on standard error.
            let toFile = try runCommand(TestPaths.binary, ["export", "--user", "1", "--out", dir + "/u.zst"] + url)
            #expect(toFile.status == 0, "\(toFile.stderr)")
            let toStdout = try runCommand(TestPaths.binary, ["export", "--user", "1", "--out", "-"] + url)
            #expect(toStdout.status == 0, "\(toStdout.stderr)")
            #expect(toStdout.stderr.contains("wrote -:"), "\(toStdout.stderr)")
            #expect(toStdout.stdoutData.starts(with: [0x28, 0xB5, 0x2F, 0xFD]), "a zstd frame on standard output")
            #expect(toStdout.stdoutData == FileManager.default.contents(atPath: dir + "/u.zst"), "the same bytes as the file")
            let unzipped = try runCommand("/usr/bin/zstd", ["-dc", dir + "/u.zst"])
            #expect(unzipped.status == 0 && unzipped.stdout.contains("\"record\":\"conversation\""))
            let copy = try runCommand(TestPaths.binary, ["copy-out", "--table", "chat.users", "--no-compress", "--out", "-"] + url)
            #expect(copy.status == 0 && copy.stdout.split(separator: "\n").count == 21, "\(copy.stderr)")
            #expect(try runCommand(TestPaths.binary, ["report", "--out", "-", "--json"] + url).status == 64)
            let imported = try runCommand(TestPaths.binary, ["import", "whatsapp", "-", "--json"] + url,
                                          stdinPath: TestPaths.packageRoot + "/Tests/Fixtures/whatsapp/ios-24h.txt")
            #expect(imported.status == 0 && imported.stdout.contains("\"messagesAdded\""), "\(imported.stderr)")

            // --json: errors as a JSON object on standard output, with the exit code.
            let down = try runCommand(TestPaths.binary, ["jobs", "unread", "--json", "--database-url", "host=/nonexistent dbname=x"])
            #expect(down.status == 69)
            let object = try JSONSerialization.jsonObject(with: Data(down.stdout.utf8)) as? [String: Any]
            let error = object?["error"] as? [String: Any]
            #expect(error?["exit_code"] as? Int == 69, "\(down.stdout)")
            #expect((error?["message"] as? String)?.contains("could not connect") == true, "\(down.stdout)")
            let usage = try runCommand(TestPaths.binary, ["migrate", "--to", "x", "--json"] + url)
            #expect(usage.status == 64 && usage.stdout.contains("\"exit_code\" : 64"), "\(usage.stdout)")
            let busy = try runCommand(TestPaths.binary, ["migrate", "baseline", "--version", "99", "--json"] + url)
            #expect(busy.status == 64 && busy.stdout.contains("no migration has that version"), "\(busy.stdout)")

            // --verbose: statements with durations, never a bound value (here the --from time).
            let verbose = try runCommand(TestPaths.binary, ["export", "--user", "1", "--from", "2001-02-03T04:05:06Z", "--out", dir + "/v.zst", "--verbose"] + url)
            #expect(verbose.status == 0, "\(verbose.stderr)")
            let statements = verbose.stderr.split(separator: "\n").filter { $0.contains(" ms: ") && $0.contains("statement") }
            #expect(statements.count >= 3, "\(verbose.stderr)")
            #expect(!verbose.stderr.contains("2001-02-03"), "\(verbose.stderr)")

            // A database error is one line in words; --verbose adds the SQLSTATE and the statement.
            try "1\tx\n".write(toFile: dir + "/t.copy", atomically: true, encoding: .utf8)
            let missing = try runCommand(TestPaths.binary, ["copy-in", "--table", "chat.no_such_table", dir + "/t.copy"] + url)
            expectOneLine(missing, status: 1, containing: "does not exist", "copy-in into a missing table")
            let missingVerbose = try runCommand(TestPaths.binary, ["copy-in", "--table", "chat.no_such_table", dir + "/t.copy", "--verbose"] + url)
            #expect(missingVerbose.stderr.contains("SQLSTATE 42P01"), "\(missingVerbose.stderr)")
            // File system errors name the path and the reason in words.
            let local = try runCommand(TestPaths.binary, ["local", "start", "--dir", "/proc/nope"])
            expectOneLine(local, status: 1, containing: "/proc/nope", "local start in /proc")
            #expect(!local.stderr.contains("NSCocoaErrorDomain"), "\(local.stderr)")
            let report = try runCommand(TestPaths.binary, ["report", "--out", "/proc/nope/r.html"] + url)
            expectOneLine(report, status: 1, containing: "/proc/nope/r.html: cannot create", "report into /proc")
        }
    }

    /// A password in --database-url is hidden from other local users (`ps`) while the command
    /// runs; --database-url-file keeps it out of the arguments entirely.
    @Test func aPasswordInTheDatabaseURLIsNotVisibleInTheProcessArguments() throws {
        try TestDatabase.withSettings { conn, settings in
            #expect(try conn.tryAdvisoryLock(Migrator.lockKey))
            defer { _ = try? conn.advisoryUnlock(Migrator.lockKey) }
            // The test cluster trusts local connections, so any password is accepted.
            for url in [settings.conninfo + " password='s3cret pw'", settings.conninfo + " password=s3cretpw"] {
                let pid = try spawnCommand(TestPaths.binary, ["migrate", "--lock-wait", "20s", "--database-url", url])
                var cmdline = ""
                for _ in 0..<50 {
                    Thread.sleep(forTimeInterval: 0.1)
                    cmdline = (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline").map { String(decoding: $0, as: UTF8.self) } ?? "")
                    if try conn.scalar(Int.self, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'chatstore migrate'") > 0 { break }
                }
                kill(pid, SIGKILL)
                _ = waitCommand(pid)
                #expect(cmdline.contains("--database-url"), "\(cmdline)")
                #expect(!cmdline.contains("s3cret"), "the password is visible: \(cmdline)")
                #expect(cmdline.contains("password=") && cmdline.contains("****"), "\(cmdline)")
            }
            // Every form libpq takes: URL user info, URL parameter, keyword (quoted or not).
            for (url, hidden) in [("postgres://app:pa%40ss@db:5432/chat", "pa%40ss"), ("postgresql://app:x@/chat?host=/tmp", "x"),
                                  ("postgres://db/chat?sslmode=require&password=pw1&user=app", "pw1"),
                                  ("host=db password='it\\'s secret' user=app", "it\\'s secret"), ("password = plain dbname=chat", "plain")] {
                let bytes = Array(url.utf8)
                let ranges = ConnectionSettings.passwordRanges(in: bytes)
                #expect(ranges.map { String(decoding: bytes[$0], as: UTF8.self) } == [hidden], "\(url)")
            }
            #expect(ConnectionSettings.passwordRanges(in: Array("postgres://app@db/chat".utf8)).isEmpty)
            // From a file: nothing secret in the arguments at all, and it connects.
            let file = try TestPaths.temporaryDirectory() + "/url"
            try (settings.conninfo + " password=s3cretpw\n").write(toFile: file, atomically: true, encoding: .utf8)
            let r = try runCommand(TestPaths.binary, ["migrate", "status", "--database-url-file", file])
            #expect(r.status == 0, "\(r.stderr)")
            let both = try runCommand(TestPaths.binary, ["migrate", "status", "--database-url-file", file, "--database-url", settings.conninfo])
            #expect(both.status == 64)
        }
    }
}
