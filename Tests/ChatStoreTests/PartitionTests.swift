import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct PartitionTests {
    let manager = PartitionManager(logger: TestDatabase.logger)

    @Test func granularityArithmetic() {
        let d = PostgresTimestamp.parse("2026-11-29 13:45:00+00")! // a Sunday
        #expect(PostgresTimestamp.format(PartitionGranularity.day.floor(d)) == "2026-11-29 00:00:00.000000+00")
        #expect(PostgresTimestamp.format(PartitionGranularity.week.floor(d)) == "2026-11-23 00:00:00.000000+00")
        #expect(PostgresTimestamp.format(PartitionGranularity.month.floor(d)) == "2026-11-01 00:00:00.000000+00")
        #expect(PostgresTimestamp.format(PartitionGranularity.month.next(d)) == "2026-12-01 00:00:00.000000+00")
        #expect(PostgresTimestamp.format(PartitionGranularity.week.next(d)) == "2026-11-30 00:00:00.000000+00")
    }

    @Test func ensureIsIdempotentAndCoversAhead() throws {
        try TestDatabase.migrated { conn, _ in
            let before = try manager.status(conn)
            #expect(!before.healthy)
            let first = try manager.ensure(conn, ahead: 5)
            #expect(first.created.count == 3 * 6)
            #expect(first.status.healthy)
            #expect(first.status.tables.allSatisfy { $0.intervalsAhead == 5 })
            #expect(first.status.lastSuccessfulUpkeep != nil)
            let second = try manager.ensure(conn, ahead: 5)
            #expect(second.created.isEmpty)
            // Indexes and constraints reach the new partitions.
            let idx = try conn.scalar(Int.self, """
                SELECT count(*) FROM pg_indexes WHERE schemaname = 'chat' AND tablename = \(first.created[0])
                """)
            #expect(idx >= 2)
        }
    }

    @Test func coverageRunningOutIsReported() throws {
        try TestDatabase.migrated { conn, settings in
            try manager.ensure(conn, ahead: 1)
            let st = try manager.status(conn)
            #expect(!st.healthy)
            #expect(st.warnings.contains { $0.contains("only 1 day(s) of partitions ahead") })
            let r = try runCommand(TestPaths.binary, ["partitions", "status", "--database-url", settings.conninfo])
            #expect(r.status == 4)
            let ok = try runCommand(TestPaths.binary, ["partitions", "ensure", "--json", "--database-url", settings.conninfo])
            #expect(ok.status == 0, "\(ok.stderr)")
            let s2 = try runCommand(TestPaths.binary, ["partitions", "status", "--json", "--database-url", settings.conninfo])
            #expect(s2.status == 0)
            #expect(s2.stdout.contains("\"intervalsAhead\" : 7"))
        }
    }

    @Test func weeklyAndMonthlyGranularity() throws {
        try TestDatabase.migrated { conn, _ in
            try manager.configure(conn, table: "receipts", granularity: .week, premake: 3)
            try manager.configure(conn, table: "presence_events", granularity: .month, premake: 2)
            let now = PostgresTimestamp.parse("2026-11-29 10:00:00+00")!
            let r = try manager.ensure(conn, now: now)
            let rec = try manager.partitions(conn, parent: "receipts")
            #expect(rec.count == 4)
            #expect(rec.allSatisfy { $0.to.timeIntervalSince($0.from) == 7 * 86400 })
            #expect(PostgresTimestamp.format(rec[0].from) == "2026-11-23 00:00:00.000000+00")
            let pres = try manager.partitions(conn, parent: "presence_events")
            #expect(pres.map { PostgresTimestamp.format($0.from) } == ["2026-11-01 00:00:00.000000+00", "2026-12-01 00:00:00.000000+00", "2027-01-01 00:00:00.000000+00"])
            #expect(r.status.tables.first { $0.table == "presence_events" }?.intervalsAhead == 2)
            // Switching messages from day to week later: new partitions start where days end.
            try manager.configure(conn, table: "messages", granularity: .week, premake: 2)
            try manager.ensure(conn, now: now.addingTimeInterval(3 * 86400))
            let msgs = try manager.partitions(conn, parent: "messages")
            for (a, b) in zip(msgs, msgs.dropFirst()) { #expect(a.to <= b.from, "overlap \(a.name) \(b.name)") }
        }
    }

    @Test func rowsInTheDefaultPartitionAreRepairedWhileAnotherConnectionInserts() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.seedConversation(conn)
            try manager.ensure(conn, ahead: 3)
            // 5,000 rows for dates without partitions (10 to 14 days ago) land in the default partition.
            try conn.execute("""
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                SELECT 100, g, now() - interval '10 days' - (g % 5) * interval '1 day', 1, 'text', 'old ' || g
                FROM generate_series(1, 5000) g
                """)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages_default") == 5000)
            let st = try manager.status(conn)
            #expect(st.warnings.contains { $0.contains("5000 rows in messages_default") })

            // Meanwhile another connection inserts into the live partitions.
            let inserted = Locked(0)
            let stop = Locked(false)
            let writer = Thread {
                guard let w = try? PostgresConnection(settings: settings, logger: TestDatabase.logger) else { return }
                var id = 1_000_000
                while !stop.get {
                    id += 1
                    if (try? w.execute("""
                        INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                        VALUES (100, \(id), now(), 2, 'text', 'live')
                        """)) != nil { inserted.withValue { $0 += 1 } }
                }
            }
            writer.start()
            Thread.sleep(forTimeInterval: 0.1)
            let report = try manager.repairDefault(conn)
            Thread.sleep(forTimeInterval: 0.1)
            stop.withValue { $0 = true }
            Thread.sleep(forTimeInterval: 0.2)

            #expect(report.moved.values.reduce(0, +) == 5000)
            #expect(report.moved.count == 5)
            #expect(report.remainingInDefault["messages"] == 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE body LIKE 'old %'") == 5000)
            #expect(try conn.scalar(Int.self, "SELECT count(DISTINCT message_id) FROM chat.messages WHERE body LIKE 'old %'") == 5000)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE body = 'live'") == inserted.get)
            #expect(inserted.get > 0)
            #expect(try manager.status(conn).healthy)
            // A partition for a range that has stranded rows is created by ensure too (no
            // "default partition would be violated").
            try conn.execute("""
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                VALUES (100, 42, now() + interval '6 days', 1, 'text', 'future')
                """)
            let e = try manager.ensure(conn, ahead: 7)
            #expect(e.movedFromDefault.values.reduce(0, +) == 1)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages_default") == 0)
        }
    }
}
