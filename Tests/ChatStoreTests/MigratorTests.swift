import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct MigratorTests {
    let logger = TestDatabase.logger

    /// The build embeds every SQL file as it is on disk (Plugins/EmbedSQLPlugin; nothing generated
    /// is committed), so the binary carries exactly the repository's migrations and queries.
    @Test func theBinaryCarriesEverySQLFileAsOnDisk() throws {
        let queries = TestPaths.packageRoot + "/Queries"
        let names = try FileManager.default.contentsOfDirectory(atPath: queries).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(QueryFile.all.map(\.name) == names)
        for q in QueryFile.all {
            #expect(q.text == (try String(contentsOfFile: queries + "/" + q.name, encoding: .utf8)), "\(q.name)")
        }
        let onDisk = try Migration.load(directory: TestPaths.packageRoot + "/Migrations")
        #expect(try Migration.embedded() == onDisk)
        let sum = try runCommand("/usr/bin/sha256sum", [TestPaths.packageRoot + "/Migrations/0001_schema_v1.sql"])
        #expect(sum.stdout.hasPrefix(try Migration.embedded()[0].checksum))
    }

    @Test func splitterHonoursQuotesCommentsAndDollarQuotes() throws {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (x text DEFAULT 'semi;colon');
            /* block; comment */
            DO $$ BEGIN PERFORM 1; END $$;

            SELECT $tag$ ; $tag$, "we;ird";
            -- trailing comment only
            """
        let parts = try SQLScript.statements(script)
        #expect(parts.map(\.line) == [2, 4, 6])
        #expect(parts[1].text == "DO $$ BEGIN PERFORM 1; END $$")
        #expect(parts[2].text == "SELECT $tag$ ; $tag$, \"we;ird\"")
    }

    @Test func splitterRefusesPsqlMetaCommandsAndUnclosedQuotesByLine() {
        #expect(throws: SQLScriptError.metaCommand(line: 3, command: "\\i")) {
            try SQLScript.statements("SELECT 1;\nSELECT '\\i';\n\\i other.sql\n")
        }
        #expect(throws: SQLScriptError.metaCommand(line: 1, command: "\\gset")) {
            try SQLScript.statements("SELECT 1 AS x \\gset\n")
        }
        #expect(throws: SQLScriptError.unterminated(line: 2, what: "a '…' string")) {
            try SQLScript.statements("SELECT 1;\nSELECT 'open;\nSELECT 2;")
        }
        #expect(throws: SQLScriptError.unterminated(line: 1, what: "a /* comment")) {
            try SQLScript.statements("/* /* */ SELECT 1;")
        }
        // A migration file holding one names the file and the line.
        #expect(throws: MigrationError.self) { try Migration(fileName: "0009_x.sql", text: "\\set ON_ERROR_STOP on\n") }
        let e = try? Migration(fileName: "0009_x.sql", text: "SELECT 1;\n\\connect other\n")
        #expect(e == nil)
    }

    /// Every file of Tests/Fixtures/sql-corpus, run by psql itself and statement by statement
    /// from our splitter (each through the extended protocol, which refuses two statements in
    /// one), gives the same output rows: the splitter agrees with psql on where statements end.
    @Test func splitterAgreesWithPsqlOnTheCorpus() throws {
        let dir = TestPaths.packageRoot + "/Tests/Fixtures/sql-corpus"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(files.count >= 5)
        let psql = try LocalCluster.binDirectory() + "/psql"
        for file in files {
            let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            let theirs = try TestDatabase.withSettings { _, settings in
                let r = try runCommand(psql, ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", settings.conninfo, "-f", dir + "/" + file])
                #expect(r.status == 0, "\(file): psql: \(r.stderr)")
                return r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
            }
            let ours = try TestDatabase.with { conn in
                var lines: [String] = []
                for statement in try SQLScript.statements(text) {
                    let result = try conn.execute(SQL(unsafeRaw: statement.text))
                    for row in result.rows {
                        let shown = try (0..<result.columns.count).map { try row.decode(String?.self, at: $0) ?? "" }.joined(separator: "|")
                        lines += shown.split(separator: "\n").map(String.init)
                    }
                }
                return lines.filter { !$0.isEmpty }
            }
            #expect(!ours.isEmpty)
            #expect(ours == theirs, "\(file)")
        }
    }

    @Test func migratesAFreshDatabaseAndIsIdempotent() throws {
        try TestDatabase.withSettings { conn, _ in
            let m = try Migrator(migrations: Migration.embedded(), logger: logger)
            let first = try m.migrate(connection: conn)
            #expect(first.fromVersion == 0)
            #expect(first.toVersion == m.migrations.last!.version)
            #expect(first.applied == m.migrations.map(\.version))
            let second = try m.migrate(connection: conn)
            #expect(second.applied.isEmpty && second.resumed.isEmpty)
            let st = try m.status(connection: conn)
            #expect(st.problems.isEmpty)
            #expect(st.entries.allSatisfy { $0.state == "applied" })
            #expect(try m.plan(connection: conn).isEmpty)
        }
    }

    /// A database built from `migrate plan --offline | psql` is adopted by `migrate baseline`,
    /// after which `migrate` applies only the later migrations; `status --check` gates on pending.
    @Test func aDatabaseBuiltByPsqlIsAdoptedByBaselineAndThenMigrated() throws {
        try TestDatabase.withSettings { conn, settings in
            let url = ["--database-url", settings.conninfo]
            let plan = try runCommand(TestPaths.binary, ["migrate", "plan", "--offline", "--to", "3"])
            #expect(plan.status == 0, "\(plan.stderr)")
            let file = try TestPaths.temporaryDirectory() + "/plan.sql"
            try plan.stdout.write(toFile: file, atomically: true, encoding: .utf8)
            let psql = try runCommand(try LocalCluster.binDirectory() + "/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", settings.conninfo, "-f", file])
            #expect(psql.status == 0, "\(psql.stderr)")

            // Without a baseline, migrate cannot adopt it (the tables exist) and status --check says so.
            let check0 = try runCommand(TestPaths.binary, ["migrate", "status", "--check"] + url)
            #expect(check0.status == 5)
            #expect(check0.stderr.contains("pending"), "\(check0.stderr)")
            let refused = try runCommand(TestPaths.binary, ["migrate"] + url)
            #expect(refused.status == 5)
            #expect(refused.stderr.contains("migrate baseline --version"), "\(refused.stderr)")

            // A baseline at a version the schema is not at is refused, naming the missing table.
            let wrong = try runCommand(TestPaths.binary, ["migrate", "baseline", "--version", "5"] + url)
            #expect(wrong.status == 5)
            #expect(wrong.stderr.contains("chat.unread_messages") && wrong.stderr.contains("0005_"), "\(wrong.stderr)")
            #expect(try conn.scalar(Bool.self, "SELECT to_regclass('chat.schema_migrations') IS NULL"))
            let unknown = try runCommand(TestPaths.binary, ["migrate", "baseline", "--version", "99"] + url)
            #expect(unknown.status == 64, "\(unknown.stderr)")

            let base = try runCommand(TestPaths.binary, ["migrate", "baseline", "--version", "3"] + url)
            #expect(base.status == 0, "\(base.stderr)")
            #expect(base.stdout.contains("baseline at version 3"))
            // Twice is refused: the database now has history.
            let again = try runCommand(TestPaths.binary, ["migrate", "baseline", "--version", "3"] + url)
            #expect(again.status == 5)
            #expect(again.stderr.contains("already has migration history"), "\(again.stderr)")

            let migrate = try runCommand(TestPaths.binary, ["migrate", "--json"] + url)
            #expect(migrate.status == 0, "\(migrate.stderr)")
            let latest = try Migration.embedded().last!.version
            #expect(try conn.scalar(Int.self, "SELECT max(version) FROM chat.schema_migrations WHERE completed") == latest)
            let applied = try conn.query("SELECT version FROM chat.schema_migrations WHERE tool_version NOT LIKE '%(baseline)' ORDER BY version").map { try $0.decode(Int.self, "version") }
            #expect(applied == Array(4...latest))
            let check1 = try runCommand(TestPaths.binary, ["migrate", "status", "--check"] + url)
            #expect(check1.status == 0, "\(check1.stderr)")
            // And the schema works: a nightly run succeeds on it.
            let nightly = try runCommand(TestPaths.binary, ["nightly", "--quiet"] + url)
            #expect(nightly.status == 0, "\(nightly.stderr)")
        }
    }

    @Test func migrateToAVersionStopsThere() throws {
        try TestDatabase.withSettings { conn, _ in
            let m = try Migrator(migrations: Migration.embedded(), logger: logger)
            let r = try m.migrate(connection: conn, to: 1)
            #expect(r.toVersion == 1)
            #expect(try m.plan(connection: conn).map(\.version) == m.migrations.map(\.version).filter { $0 > 1 })
            #expect(throws: MigrationError.self) { try m.migrate(connection: conn, to: 99) }
        }
    }

    @Test func twoConcurrentMigratorsBothSucceedAndApplyOnce() throws {
        try TestDatabase.withSettings { conn, settings in
            let results = Locked<[Int: CommandResult]>([:])
            let url = settings.conninfo
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                let r = try? runCommand(TestPaths.binary, ["migrate", "--json", "--database-url", url])
                results.withValue { $0[i] = r }
            }
            let r0 = try #require(results.get[0]), r1 = try #require(results.get[1])
            #expect(r0.status == 0, "\(r0.stderr)")
            #expect(r1.status == 0, "\(r1.stderr)")
            // Exactly one of them applied the migrations.
            let appliedCounts = [r0, r1].map { $0.stdout.contains("\"applied\" : [\n      1,") ? 1 : 0 }
            #expect(appliedCounts.reduce(0, +) == 1, "\(r0.stdout)\n\(r1.stdout)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.schema_migrations") == (try Migration.embedded().count))
        }
    }

    @Test func aMigratorThatCannotGetTheLockGivesUpWithExitCode3() throws {
        try TestDatabase.withSettings { conn, settings in
            #expect(try conn.tryAdvisoryLock(Migrator.lockKey))
            let r = try runCommand(TestPaths.binary, ["migrate", "--lock-wait", "1", "--database-url", settings.conninfo])
            #expect(r.status == 3)
            #expect(r.stderr.contains("another migrator holds the migration lock"))
            // The wait was shown, naming who holds the lock.
            #expect(r.stderr.contains("waiting for the migration lock, held by pid \(conn.backendPID)"), "\(r.stderr)")
            #expect(try conn.scalar(Bool.self, "SELECT to_regclass('chat.schema_migrations') IS NULL"))
        }
    }

    @Test func aFailingMigrationLeavesThePreviousVersionAndNamesTheStatement() throws {
        try TestDatabase.withSettings { conn, _ in
            var migrations = try Migration.embedded()
            migrations.append(try Migration(fileName: "0900_bad.sql", text: """
                CREATE TABLE chat.half_done (x int);

                INSERT INTO chat.half_done VALUES (1);
                ALTER TABLE chat.half_done
                    ADD COLUMN y int REFERENCES chat.no_such_table (id);
                """))
            let m = try Migrator(migrations: migrations, logger: logger)
            do {
                try m.migrate(connection: conn)
                Issue.record("expected a failure")
            } catch let e as MigrationError {
                guard case .statementFailed(let file, let line, let statement, let state, let message, _) = e else {
                    Issue.record("wrong error \(e)"); return
                }
                #expect(file == "0900_bad.sql")
                #expect(line == 4 || line == 5)
                #expect(statement.contains("no_such_table"))
                #expect(state == "42P01")
                #expect(message.contains("no_such_table"))
                #expect(e.description.hasPrefix("0900_bad.sql:"))
            }
            let latest = try Migration.embedded().last!.version
            #expect(try m.status(connection: conn).currentVersion == latest)
            #expect(try conn.scalar(Bool.self, "SELECT to_regclass('chat.half_done') IS NULL"))
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.schema_migrations WHERE version = 900") == 0)
        }
    }

    @Test func anEditedMigrationIsRefusedNamingFileAndChecksums() throws {
        try TestDatabase.withSettings { conn, settings in
            try Migrator(migrations: Migration.embedded(), logger: logger).migrate(connection: conn)
            let dir = try TestPaths.temporaryDirectory()
            for m in try Migration.embedded() {
                let text = m.version == 1 ? m.text + "\n-- an innocent-looking edit\n" : m.text
                try text.write(toFile: dir + "/" + m.fileName, atomically: true, encoding: .utf8)
            }
            let edited = try Migration.load(directory: dir)
            let m = try Migrator(migrations: edited, logger: logger)
            do {
                try m.migrate(connection: conn)
                Issue.record("expected a refusal")
            } catch let e as MigrationError {
                let original = try Migration.embedded()[0].checksum
                #expect(e.description.contains("0001_schema_v1.sql"))
                #expect(e.description.contains(original))
                #expect(e.description.contains(edited[0].checksum))
            }
            // Through the CLI: exit code 5 for both migrate and status.
            let r = try runCommand(TestPaths.binary, ["migrate", "--migrations-dir", dir, "--database-url", settings.conninfo])
            #expect(r.status == 5)
            #expect(r.stderr.contains("0001_schema_v1.sql"))
            let s = try runCommand(TestPaths.binary, ["migrate", "status", "--migrations-dir", dir, "--database-url", settings.conninfo])
            #expect(s.status == 5)
        }
    }

    @Test func aDatabaseWithAnUnknownVersionIsRefused() throws {
        try TestDatabase.withSettings { conn, _ in
            let m = try Migrator(migrations: Migration.embedded(), logger: logger)
            try m.migrate(connection: conn)
            try conn.execute("""
                INSERT INTO chat.schema_migrations (version, file, checksum, transactional, completed, tool_version)
                VALUES (999, '0999_from_the_future.sql', 'abc', true, true, '9.9.9')
                """)
            #expect {
                try m.migrate(connection: conn)
            } throws: { e in
                (e as? MigrationError)?.description.contains("0999_from_the_future.sql") == true
            }
        }
    }

    @Test func aFailedConcurrentIndexBuildResumesAndRebuildsTheInvalidIndex() throws {
        try TestDatabase.withSettings { conn, _ in
            var migrations = try Migration.embedded()
            migrations.append(try Migration(fileName: "0900_table.sql", text: """
                CREATE TABLE chat.resume_t (x int, y int);
                INSERT INTO chat.resume_t SELECT g, g % 10 FROM generate_series(1, 1000) g;
                """))
            migrations.append(try Migration(fileName: "0901_indexes.sql", text: """
                -- chatstore:no-transaction
                CREATE INDEX CONCURRENTLY IF NOT EXISTS resume_t_x ON chat.resume_t (x);
                CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS resume_t_y ON chat.resume_t (y);
                """))
            let m = try Migrator(migrations: migrations, logger: logger)
            #expect(throws: MigrationError.self) { try m.migrate(connection: conn) }
            let st = try m.status(connection: conn)
            let e4 = try #require(st.entries.first { $0.version == 901 })
            #expect(e4.state == "partial")
            #expect(e4.stepsDone == 1)
            #expect(st.currentVersion == 900)
            #expect(try conn.scalar(Bool.self, "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 'chat.resume_t_y'::regclass"))
            // Fix the data, rerun: it resumes at step 2, drops the invalid index and rebuilds it.
            try conn.execute("DELETE FROM chat.resume_t WHERE x > 10")
            let r = try m.migrate(connection: conn)
            #expect(r.resumed == [901])
            #expect(r.toVersion == 901)
            #expect(try conn.scalar(Bool.self, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'chat.resume_t_y'::regclass"))
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.schema_migration_steps WHERE version = 901") == 2)
            #expect(try m.status(connection: conn).entries.allSatisfy { $0.state == "applied" })
        }
    }
}
