import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct CopyAndLockTests {
    @Test func copyRoundTripOfOneMillionRows() throws {
        try TestDatabase.with { conn in
            try conn.execute("CREATE TABLE m (conversation_id bigint, id bigint, sent_at timestamptz, body text, deleted bool)")
            let n = 1_000_000
            let base: Int64 = 1_790_000_000_000_000
            let loaded = try conn.copyIn("COPY m FROM STDIN") { w in
                for i in 0..<n {
                    w.append(Int64(i % 997))
                    w.append(Int64(i))
                    w.appendTimestamp(microseconds: base + Int64(i) * 1000)
                    if i % 100 == 0 { w.appendNull() } else { w.append("msg \(i)\twith\\tab\nline") }
                    w.append(i % 2 == 0)
                    try w.endRow()
                }
            }
            #expect(loaded == n)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM m WHERE body IS NULL") == n / 100)
            #expect(try conn.scalar(String.self, "SELECT body FROM m WHERE id = 7") == "msg 7\twith\\tab\nline")
            var rows = 0
            var bytes = 0
            var last = ""
            let sent = try conn.copyOut("COPY (SELECT id, body FROM m ORDER BY id) TO STDOUT") { chunk in
                rows += 1
                bytes += chunk.count
                if rows == n { last = String(decoding: chunk, as: UTF8.self) }
            }
            #expect(sent == n && rows == n)
            #expect(last == "999999\tmsg 999999\\twith\\\\tab\\nline\n")
        }
    }

    @Test func copyInAbortedByClientLeavesNothing() throws {
        try TestDatabase.with { conn in
            try conn.execute("CREATE TABLE c (v int)")
            struct Stop: Error {}
            #expect(throws: Stop.self) {
                try conn.copyIn("COPY c FROM STDIN", flushThreshold: 16) { w in
                    for i in 0..<1000 { w.append(i); try w.endRow() }
                    throw Stop()
                }
            }
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM c") == 0)
        }
    }

    @Test func copyInBadRowIsAServerErrorNamingTheLine() throws {
        try TestDatabase.with { conn in
            try conn.execute("CREATE TABLE c (v int)")
            do {
                try conn.copyIn("COPY c FROM STDIN") { w in
                    w.append("1"); try w.endRow()
                    w.append("two"); try w.endRow()
                }
                Issue.record("expected an error")
            } catch let e as PostgresError {
                #expect(e.sqlState == .invalidTextRepresentation)
                #expect(e.description.contains("line 2") || (e.detail ?? "").contains("line 2") || e.message.contains("two"))
            }
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM c") == 0)
            #expect(conn.isHealthy)
        }
    }

    /// The sender-thread variant (as `generate` uses it): every row arrives, an abort keeps
    /// nothing, a bad row is the server's error, and the connection stays usable.
    @Test func copyInThroughABackgroundSender() throws {
        try TestDatabase.with { conn in
            try conn.execute("CREATE TABLE c (v int)")
            let n = try conn.copyIn("COPY c FROM STDIN", flushThreshold: 64, backgroundQueue: 2) { w in
                for i in 0..<200_000 { w.append(i); try w.endRow() }
            }
            #expect(n == 200_000)
            #expect(try conn.scalar(Int.self, "SELECT sum(v)::bigint FROM c") == 199_999 * 200_000 / 2)
            struct Stop: Error {}
            #expect(throws: Stop.self) {
                try conn.copyIn("COPY c FROM STDIN", flushThreshold: 64, backgroundQueue: 2) { w in
                    for i in 0..<50_000 { w.append(i); try w.endRow() }
                    throw Stop()
                }
            }
            #expect(throws: PostgresError.self) {
                try conn.copyIn("COPY c FROM STDIN", flushThreshold: 64, backgroundQueue: 2) { w in
                    for i in 0..<50_000 { w.append(i); try w.endRow() }
                    w.append("two"); try w.endRow()
                }
            }
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM c") == 200_000)
            #expect(conn.isHealthy)
        }
    }

    @Test func copyOutAbortedByClientLeavesConnectionUsable() throws {
        try TestDatabase.with { conn in
            struct Stop: Error {}
            var seen = 0
            #expect(throws: Stop.self) {
                try conn.copyOut("COPY (SELECT g FROM generate_series(1, 200000) g) TO STDOUT") { _ in
                    seen += 1
                    if seen == 10 { throw Stop() }
                }
            }
            let answer = try conn.scalar(Int.self, "SELECT 41 + 1")
            #expect(answer == 42)
        }
    }

    @Test func advisoryLockContentionBetweenTwoConnections() throws {
        try TestDatabase.withSettings { a, settings in
            let b = try PostgresConnection(settings: settings, logger: TestDatabase.logger)
            let key = AdvisoryLockKey("chatstore.test.lock")
            #expect(try a.tryAdvisoryLock(key))
            #expect(try b.tryAdvisoryLock(key) == false)
            // A waiting lock is bounded by lock_timeout.
            try b.setTimeouts(lock: .milliseconds(100))
            do {
                try b.advisoryLock(key)
                Issue.record("expected lock timeout")
            } catch let e as PostgresError {
                #expect(e.sqlState == .lockNotAvailable)
            }
            #expect(try a.advisoryUnlock(key))
            #expect(try b.tryAdvisoryLock(key))
            #expect(try a.tryAdvisoryLock(key) == false)
            // Session locks vanish with the session.
            let pid = b.backendPID
            _ = try a.execute("SELECT pg_terminate_backend(\(Int32(pid)))")
            Thread.sleep(forTimeInterval: 0.2)
            #expect(try a.tryAdvisoryLock(key))
        }
    }

    @Test func timestampFormattingRoundTrips() {
        for us: Int64 in [0, 1, -1, 1_790_000_000_123_456, -86_400_000_001, 253_402_300_799_999_999] {
            let text = PostgresTimestamp.format(microsecondsSinceEpoch: us)
            #expect(PostgresTimestamp.parseMicroseconds(text) == us, "\(text)")
            // The ISO 8601 form of JSON and manifests reads back to the same instant.
            if us >= 0 && us < 253_402_300_799_000_000 {
                let iso = PostgresTimestamp.iso8601(Date(timeIntervalSince1970: Double(us) / 1e6))
                #expect(iso.contains("T") && iso.hasSuffix("+00:00"), "\(iso)")
                #expect(PostgresTimestamp.parseMicroseconds(iso).map { abs($0 - us) <= 1 } == true, "\(iso)")
            }
        }
        #expect(PostgresTimestamp.parseMicroseconds("2026-01-02 03:04:05+05:30") == PostgresTimestamp.parseMicroseconds("2026-01-01 21:34:05+00"))
        #expect(PostgresTimestamp.parseMicroseconds("2026-01-02") != nil)
        #expect(PostgresTimestamp.parseMicroseconds("2026-1-02") == nil)
    }
}

@Suite struct CopyTimestampTests {
    @Test func fastCopyTimestampMatchesTheServer() throws {
        try TestDatabase.with { conn in
            try conn.execute("CREATE TABLE ts (us bigint, t timestamptz)")
            let values: [Int64] = [0, 1, -1, 951_782_400_000_000, 1_790_000_000_123_456, -2_208_988_800_000_000, 4_102_444_799_999_999]
            try conn.copyIn("COPY ts FROM STDIN") { w in
                for v in values { w.append(v); w.appendTimestamp(microseconds: v); try w.endRow() }
            }
            let bad = try conn.scalar(Int.self, "SELECT count(*) FROM ts WHERE (extract(epoch FROM t) * 1000000)::bigint <> us")
            #expect(bad == 0)
        }
    }
}
