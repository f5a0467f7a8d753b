import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

/// The application never waits on chatstore for more than a moment: while nightly (with
/// retention), retire (also queued behind nightly), ensure, repair-default and archive export
/// run, two application connections keep inserting messages and presence events, and every
/// insert's latency is measured.
@Suite struct AppLatencyTests {
    final class Writer: @unchecked Sendable {
        let lock = NSLock()
        var latencies: [Double] = []
        var errors: [String] = []
        var stop = false
        var thread: Thread?

        func start(_ settings: ConnectionSettings, conversation: Int64, sender: Int64, base: Int64) {
            let t = Thread { [self] in
                guard let conn = try? PostgresConnection(settings: settings, logger: TestDatabase.logger) else {
                    lock.withLock { errors.append("cannot connect") }; return
                }
                var i: Int64 = 0
                while !lock.withLock({ stop }) {
                    i += 1
                    let t0 = ContinuousClock.now
                    do {
                        try conn.execute("""
                            INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                            VALUES (\(conversation), \(base + i), now(), \(sender), 'text', 'ping')
                            """)
                        try conn.execute("INSERT INTO chat.presence_events (user_id, occurred_at, state) VALUES (\(sender), clock_timestamp(), 'online') ON CONFLICT DO NOTHING")
                    } catch {
                        lock.withLock { errors.append("\(error)") }
                    }
                    let d = ContinuousClock.now - t0
                    let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
                    lock.withLock { latencies.append(ms) }
                    Thread.sleep(forTimeInterval: 0.005)
                }
            }
            thread = t
            t.start()
        }

        func finish() -> (p99: Double, max: Double, count: Int, errors: [String]) {
            lock.withLock { stop = true }
            while thread?.isFinished == false { Thread.sleep(forTimeInterval: 0.01) }
            let sorted = lock.withLock { latencies.sorted() }
            let p99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
            return (p99, sorted.last ?? 0, sorted.count, lock.withLock { errors })
        }
    }

    @Test func appInsertsWaitAMomentAtMostWhileUpkeepRuns() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 800, days: 6, seed: 5)
            let url = ["--database-url", settings.conninfo]
            let dir = try TestPaths.temporaryDirectory()
            try conn.execute("UPDATE chat.partition_config SET retention = interval '6 days' WHERE parent_table IN ('messages', 'presence_events')")
            // As in production, partitions are made ahead (the writers' rows never land in the
            // DEFAULT partition; see the closing note on inserts racing repair-default there).
            #expect(try runCommand(TestPaths.binary, ["partitions", "ensure", "--quiet"] + url).status == 0)
            // A partition of a past day (today's is being written, so its archive could not verify).
            let live = try conn.scalar(String.self, "SELECT relname::text FROM pg_class WHERE relname ~ '^messages_p[0-9]+$' AND relispartition AND relname < 'messages_p' || to_char(now(), 'YYYYMMDD') ORDER BY relname DESC LIMIT 1")
            let member = try #require(try conn.queryOne("SELECT conversation_id, user_id FROM chat.members WHERE left_at IS NULL ORDER BY conversation_id LIMIT 1"))
            let conversation = try member.decode(Int64.self, "conversation_id"), sender = try member.decode(Int64.self, "user_id")
            let writers = [Writer(), Writer()]
            for (k, w) in writers.enumerated() { w.start(settings, conversation: conversation, sender: sender, base: 9_000_000_000 + Int64(k) * 100_000_000) }
            Thread.sleep(forTimeInterval: 0.5)

            // A reader holding a long transaction on messages, as an analyst's query would: upkeep
            // must neither fail nor make the writers queue behind its waiting DDL.
            let reader = try spawnCommand(try LocalCluster.binDirectory() + "/psql", ["-X", "-q", "-d", settings.conninfo, "-c",
                "BEGIN; SELECT count(*) FROM chat.messages; SELECT pg_sleep(3); COMMIT;"])

            // nightly with retention, and retire started while nightly runs (queued behind it).
            let nightlyResult = Locked<CommandResult?>(nil)
            let nightlyThread = Thread {
                let r = try? runCommand(TestPaths.binary, ["nightly", "--archive-dir", dir + "/n"] + url)
                nightlyResult.withValue { $0 = r }
            }
            nightlyThread.start()
            Thread.sleep(forTimeInterval: 1)
            let retire = try runCommand(TestPaths.binary, ["partitions", "retire", "--older-than", "5d", "--archive-dir", dir + "/r", "--quiet"] + url)
            while nightlyResult.get == nil { Thread.sleep(forTimeInterval: 0.05) }
            let nightlyRun = nightlyResult.get!
            _ = waitCommand(reader)
            for args in [["partitions", "ensure"], ["partitions", "repair-default"]] {
                let r = try runCommand(TestPaths.binary, args + ["--quiet"] + url)
                #expect(r.status == 0 || r.status == 4, "\(args): \(r.stderr)")
            }
            let export = try runCommand(TestPaths.binary, ["archive", "export", "--partition", live, "--archive-dir", dir + "/e", "--quiet"] + url)
            Thread.sleep(forTimeInterval: 0.5)
            let results = writers.map { $0.finish() }

            #expect(nightlyRun.status == 0 || nightlyRun.status == 2, "nightly exit \(nightlyRun.status): \(nightlyRun.stdout) \(nightlyRun.stderr)")
            #expect(retire.status == 0 || retire.status == 3, "\(retire.stderr)")
            #expect(export.status == 0, "\(export.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.archives WHERE dropped_at IS NOT NULL") > 0, "retention dropped nothing")
            let p99 = results.map(\.p99).max() ?? 0, worst = results.map(\.max).max() ?? 0
            let count = results.map(\.count).reduce(0, +)
            print("app insert latency over \(count) inserts on two connections: p99 \(String(format: "%.1f", p99)) ms, max \(String(format: "%.1f", worst)) ms")
            #expect(results.allSatisfy { $0.errors.isEmpty }, "\(results.flatMap(\.errors).prefix(3))")
            #expect(count > 100)
            // Run alone, max stays under 200 ms (BENCHMARKS.md: 139-172 ms). Inside the parallel
            // suite the two cores are shared with every other test, which adds scheduling delay
            // (865 ms seen once), so the bound here catches what matters: an insert queued behind
            // a DDL for a whole lock_timeout (3,018 ms before ShortLocks), not machine load.
            #expect(p99 < 200, "p99 \(p99) ms")
            #expect(worst < 2000, "max \(worst) ms")
        }
    }
}
