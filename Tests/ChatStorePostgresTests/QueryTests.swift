import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct QueryTests {
    @Test func hostileStringsRoundTripAsParameters() throws {
        try TestDatabase.with { conn in
            try conn.execute("CREATE TABLE t (id int PRIMARY KEY, body text)")
            let hostile = [
                "it's", "\"quoted\"", "back\\slash", "$1", "$2::text; DROP TABLE t; --", "emoji 😀👍🏽 日本語",
                "tab\tnew\nline\r", "", String(repeating: "x", count: 1 << 20),
            ]
            for (i, s) in hostile.enumerated() {
                try conn.execute("INSERT INTO t VALUES (\(i), \(s))")
            }
            for (i, s) in hostile.enumerated() {
                let back = try conn.scalar(String.self, "SELECT body FROM t WHERE id = \(i)")
                #expect(back == s)
                let same = try conn.scalar(Bool.self, "SELECT body = \(s) FROM t WHERE id = \(i)")
                #expect(same)
            }
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM t") == hostile.count)
        }
    }

    @Test func nullByteaTimestampAndBoolRoundTrip() throws {
        try TestDatabase.with { conn in
            try conn.execute("CREATE TABLE v (id int, b bytea, n text, ts timestamptz, ok bool, j jsonb, big bigint)")
            let bytes = Data((0...255).map { UInt8($0) } + [0, 0, 92, 120])
            let when = Date(timeIntervalSince1970: 1_790_000_000.123456)
            let none: String? = nil
            try conn.execute("INSERT INTO v VALUES (1, \(bytes), \(none), \(when), \(true), \(JSONB("{\"a\": [1, 2]}")), \(Int64.min))")
            let row = try #require(try conn.queryOne("SELECT * FROM v"))
            #expect(try row.decode(Data.self, "b") == bytes)
            #expect(try row.decode(String?.self, "n") == nil)
            let ts = try row.decode(Date.self, "ts")
            #expect(abs(ts.timeIntervalSince1970 - when.timeIntervalSince1970) < 0.000002)
            #expect(try row.decode(Bool.self, "ok"))
            #expect(try row.decode(String.self, "j") == "{\"a\": [1, 2]}")
            #expect(try row.decode(Int64.self, "big") == Int64.min)
        }
    }

    @Test func decodingErrorsNameTheColumn() throws {
        try TestDatabase.with { conn in
            let row = try #require(try conn.queryOne("SELECT NULL::text AS missing, 'abc' AS word"))
            do {
                _ = try row.decode(String.self, "missing")
                Issue.record("expected an error")
            } catch let e as PostgresError {
                #expect(e.kind == .decoding)
                #expect(e.message.contains("\"missing\""))
            }
            do {
                _ = try row.decode(Int.self, "word")
                Issue.record("expected an error")
            } catch let e as PostgresError {
                #expect(e.columnName == "word")
            }
            #expect(throws: PostgresError.self) { try row.decode(Int.self, "nope") }
        }
    }

    @Test func uniqueViolationCarriesSQLStateAndFields() throws {
        try TestDatabase.with { conn in
            try conn.execute("CREATE TABLE u (id int CONSTRAINT u_pk PRIMARY KEY)")
            try conn.execute("INSERT INTO u VALUES (\(1))")
            do {
                try conn.execute("INSERT INTO u VALUES (\(1))")
                Issue.record("expected a unique violation")
            } catch let e as PostgresError where e.sqlState == .uniqueViolation {
                #expect(e.constraintName == "u_pk")
                #expect(e.detail?.contains("(id)=(1)") == true)
                #expect(e.statement == "INSERT INTO u VALUES ($1)")
                #expect(e.tableName == "u")
            }
            // The connection is still usable after an error.
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM u") == 1)
        }
    }

    @Test func syntaxErrorHasPositionAndNoBoundValues() throws {
        try TestDatabase.with { conn in
            let secret = "s3cr3t-value"
            do {
                try conn.execute("SELEC \(secret)")
                Issue.record("expected a syntax error")
            } catch let e as PostgresError {
                #expect(e.sqlState == .syntaxError)
                #expect(e.position == 1)
                #expect(!e.description.contains(secret))
                #expect(e.description.contains("SQLSTATE 42601"))
            }
        }
    }

    @Test func identifiersAreQuoted() throws {
        try TestDatabase.with { conn in
            let weird = "we\"ird table; drop"
            try conn.execute("CREATE TABLE \(identifier: weird) (x int)")
            try conn.execute("INSERT INTO \(identifier: weird) VALUES (\(7))")
            #expect(try conn.scalar(Int.self, "SELECT x FROM \(identifier: weird)") == 7)
            #expect(conn.quoteIdentifier(weird) == "\"we\"\"ird table; drop\"")
        }
    }

    @Test func transactionsCommitAndRollBack() throws {
        try TestDatabase.with { conn in
            try conn.execute("CREATE TABLE x (v int)")
            try conn.transaction { c in try c.execute("INSERT INTO x VALUES (1)") }
            struct Boom: Error {}
            #expect(throws: Boom.self) {
                try conn.transaction { c in
                    try c.execute("INSERT INTO x VALUES (2)")
                    throw Boom()
                }
            }
            try conn.transaction { c in
                try c.execute("INSERT INTO x VALUES (3)")
                _ = try? c.transaction { c2 in
                    try c2.execute("INSERT INTO x VALUES (4)")
                    throw Boom()
                }
            }
            #expect(try conn.query("SELECT v FROM x ORDER BY v").map { try $0.decode(Int.self, "v") } == [1, 3])
        }
    }

    @Test func timeoutsApplyPerSession() throws {
        try TestDatabase.with { conn in
            try conn.setTimeouts(statement: .milliseconds(200), lock: .milliseconds(100))
            #expect(try conn.scalar(String.self, "SHOW statement_timeout") == "200ms")
            #expect(try conn.scalar(String.self, "SHOW lock_timeout") == "100ms")
            do {
                try conn.execute("SELECT pg_sleep(2)")
                Issue.record("expected a timeout")
            } catch let e as PostgresError {
                #expect(e.sqlState == .queryCanceled)
            }
        }
    }

    @Test func noticesGoToTheLoggerNotStderr() throws {
        try TestDatabase.with { conn in
            // A notice must not break anything; it is logged at info level.
            try conn.execute("DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$")
            #expect(conn.isHealthy)
        }
    }

    @Test func connectionFailureNeverShowsThePassword() throws {
        let settings = ConnectionSettings(conninfo: "postgresql://alice:hunter2@127.0.0.1:1/db?connect_timeout=2", source: .option)
        do {
            _ = try PostgresConnection(settings: settings)
            Issue.record("expected a connection failure")
        } catch let e as PostgresError {
            #expect(e.kind == .connection)
            #expect(!e.description.contains("hunter2"))
            #expect(e.description.contains("127.0.0.1"))
        }
        #expect(!settings.redactedDescription.contains("hunter2"))
        let kv = ConnectionSettings(conninfo: "host=h user=u password=hunter2 dbname=d", source: .option)
        #expect(!kv.redactedDescription.contains("hunter2"))
    }

    @Test func settingsResolutionOrder() {
        let fallback = ConnectionSettings(conninfo: "host=/tmp/x", source: .localCluster)
        #expect(ConnectionSettings.resolve(option: "host=a", environment: ["DATABASE_URL": "postgres://b"], fallback: fallback).source == .option)
        #expect(ConnectionSettings.resolve(option: nil, environment: ["DATABASE_URL": "postgres://b"], fallback: fallback).source == .databaseURL)
        #expect(ConnectionSettings.resolve(option: nil, environment: ["PGHOST": "h"], fallback: fallback).source == .libpqEnvironment)
        #expect(ConnectionSettings.resolve(option: nil, environment: [:], fallback: fallback).source == .localCluster)
        #expect(ConnectionSettings.resolve(option: nil, environment: [:], fallback: nil).source == .libpqDefaults)
    }

    @Test func libpqEnvironmentIsHonoured() throws {
        // Run psql-free: a child process of ours connects through PG* variables only.
        let cluster = try TestDatabase.sharedCluster()
        let r = try runCommand(TestPaths.binary, ["copy-out", "--query", "SELECT current_database()", "--out", "/dev/null", "--no-compress", "--json"],
                               environment: ["PGHOST": cluster.directory, "PGUSER": "postgres", "PGDATABASE": "postgres", "DATABASE_URL": ""])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"rows\" : 1"))
    }
}
