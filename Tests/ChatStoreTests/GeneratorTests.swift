import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

let checkedTables: [(String, String)] = [
    ("chat.users", "user_id"), ("chat.conversations", "conversation_id"), ("chat.members", "conversation_id, user_id, joined_at"),
    ("chat.media", "conversation_id, sha256"), ("chat.messages", "conversation_id, message_id, sent_at"),
    ("chat.receipts", "conversation_id, message_id, recipient_id, sent_at"), ("chat.presence_events", "user_id, occurred_at, device_id"),
]

@Suite struct GeneratorTests {
    @Test func sameSeedGivesIdenticalTables() throws {
        var sums: [[String]] = []
        var keys: [AnswerKey] = []
        for _ in 0..<2 {
            try TestDatabase.migrated { conn, settings in
                keys.append(try TestDatabase.generate(settings, users: 150, days: 3, seed: 99))
                sums.append(try checkedTables.map { try TestDatabase.checksum(conn, $0.0, orderBy: $0.1) })
            }
        }
        #expect(sums[0] == sums[1])
        #expect(keys[0] == keys[1])
        // A different seed gives different data.
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 150, days: 3, seed: 100)
            #expect(try TestDatabase.checksum(conn, "chat.messages", orderBy: "conversation_id, message_id, sent_at") != sums[0][4])
        }
    }

    @Test func theWorkloadLooksLikeAMessagingService() throws {
        try TestDatabase.migrated { conn, settings in
            let key = try TestDatabase.generate(settings, users: 300, days: 4)
            #expect(key.messages > 300 * 4 * 4)
            // Skewed activity: the top 10% of senders send far more than their share.
            let top = try conn.scalar(Double.self, """
                WITH s AS (SELECT sender_id, count(*) n FROM chat.messages GROUP BY 1),
                     r AS (SELECT n, ntile(10) OVER (ORDER BY n DESC) d FROM s)
                SELECT (sum(n) FILTER (WHERE d = 1))::float8 / sum(n) FROM r
                """)
            #expect(top > 0.3)
            // Groups of skewed size and both kinds.
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.conversations WHERE kind = 'direct'") > 0)
            #expect(try conn.scalar(Int.self, "SELECT max(c) FROM (SELECT count(*) c FROM chat.members GROUP BY conversation_id) x") > 10)
            // Joins and leaves, media, edits, deletes, replies, undelivered at the end.
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.members WHERE left_at IS NOT NULL") > 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE kind = 'media' AND media_sha256 IS NOT NULL") > 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.media WHERE encoding = 'zstd'") > 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.media WHERE encoding = 'none'") > 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE edited_at IS NOT NULL") > 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE deleted_at IS NOT NULL") > 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE reply_to_id IS NOT NULL") > 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts WHERE status = 1") > 0)
            // A daily rhythm: the busiest hour has several times the messages of the quietest.
            let ratio = try conn.scalar(Double.self, """
                SELECT max(n)::float8 / greatest(min(n), 1) FROM (SELECT extract(hour FROM sent_at) h, count(*) n FROM chat.messages GROUP BY 1) x
                """)
            #expect(ratio > 4)
            // Long-tailed delivery delays.
            let p50 = try conn.scalar(Double.self, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - sent_at)) FROM chat.receipts WHERE delivered_at > sent_at")
            let p99 = try conn.scalar(Double.self, "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - sent_at)) FROM chat.receipts WHERE delivered_at > sent_at")
            #expect(p99 > p50 * 50)
            // Presence sessions alternate online/offline per user.
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.presence_events WHERE state = 'online'") == (try conn.scalar(Int.self, "SELECT count(*) FROM chat.presence_events WHERE state = 'offline'")))
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages_default") == 0)
        }
    }

    @Test func theAnswerKeyMatchesTheAuditAndTheUnreadCounts() throws {
        try TestDatabase.migrated { conn, settings in
            let key = try TestDatabase.generate(settings, users: 250, days: 4, anomalyRate: 0.02)
            #expect(key.anomalies.values.allSatisfy { $0 > 0 })
            let runner = JobRunner(logger: TestDatabase.logger)
            let audit = try ReceiptAuditJob().run(conn, runner: runner)
            for (cat, n) in key.anomalies {
                #expect(audit.findings.first { $0.category == cat }?.found == n, "\(cat)")
            }
            #expect(audit.findings.first { $0.category == "orphan_receipt" }?.found == 0)
            #expect(audit.findings.first { $0.category == "read_before_sent" }?.found == 0)
            let unread = try UnreadJob(mode: .full).run(conn, runner: runner)
            #expect(unread.totalUnread == key.unread.total)
            #expect(unread.pairsWithUnread == key.unread.pairs)
            let checksum = try conn.scalar(Int64.self, "SELECT coalesce(sum((conversation_id * 1000003 + user_id) * unread), 0)::bigint FROM chat.unread_counts")
            #expect(checksum == key.unread.checksum)
            // The answer key's unread totals also equal an independent hand-written query.
            let independent = try conn.scalar(Int.self, """
                SELECT count(*) FROM chat.messages m
                JOIN chat.members mb ON mb.conversation_id = m.conversation_id AND mb.left_at IS NULL AND mb.joined_at <= m.sent_at
                WHERE m.sender_id <> mb.user_id AND m.deleted_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM chat.receipts r WHERE r.conversation_id = m.conversation_id AND r.message_id = m.message_id
                                  AND r.recipient_id = mb.user_id AND (r.status = 3 OR r.read_at IS NOT NULL))
                """)
            #expect(independent == key.unread.total)
        }
    }

    @Test func answerKeyFileAndCLI() throws {
        try TestDatabase.migrated { conn, settings in
            let dir = try TestPaths.temporaryDirectory()
            let start = PostgresTimestamp.format(TestDatabase.generatorStart).prefix(10)
            let r = try runCommand(TestPaths.binary, ["generate", "--users", "80", "--days", "2", "--seed", "5", "--start", String(start),
                                                     "--answer-key", dir + "/key.json", "--database-url", settings.conninfo])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("rows/s"))
            let key = try JSONDecoder().decode(AnswerKey.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/key.json")))
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages") == key.messages)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts") == key.receipts)
            let bad = try runCommand(TestPaths.binary, ["generate", "--users", "1", "--days", "2"])
            #expect(bad.status == 64)
        }
    }
}
