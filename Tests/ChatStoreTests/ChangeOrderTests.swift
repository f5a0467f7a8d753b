import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

/// The incremental jobs find changes in commit order: rows whose timestamps lie about when they
/// were committed (late, backdated, future-stamped, held open across a run) are still seen
/// exactly once. Each case ends with the incremental tables equal to a full recompute.
@Suite struct ChangeOrderTests {
    let runner = JobRunner(logger: TestDatabase.logger)

    /// A group (conversation 100) of users 1-4 since 2020, partitions for the last 40 days, and
    /// one message per day from each member for 10 days, delivered and half of them read.
    static func seedGroup(_ conn: PostgresConnection) throws {
        try PartitionManager(logger: TestDatabase.logger).ensureRange(conn, from: Date().addingTimeInterval(-40 * 86_400), until: Date().addingTimeInterval(3 * 86_400))
        try conn.executeScript("""
            INSERT INTO chat.users (user_id, handle, display_name) SELECT g, 'u' || g, 'U' || g FROM generate_series(1, 6) g;
            INSERT INTO chat.conversations (conversation_id, kind, created_by) VALUES (100, 'group', 1), (200, 'group', 2);
            INSERT INTO chat.members (conversation_id, user_id, joined_at) SELECT 100, g, '2020-01-01' FROM generate_series(1, 4) g;
            INSERT INTO chat.members (conversation_id, user_id, joined_at) SELECT 200, g, '2020-01-01' FROM generate_series(2, 5) g;
            INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
            SELECT c, c * 1000 + d * 10 + s, now() - make_interval(days => d, hours => s), s + (c / 200), 'text', 'm'
            FROM (VALUES (100), (200)) v(c), generate_series(1, 10) d, generate_series(1, 4) s;
            INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at)
            SELECT m.conversation_id, m.message_id, m.sent_at, mb.user_id,
                   CASE WHEN (m.message_id + mb.user_id) % 2 = 0 THEN 3 ELSE 2 END, m.sent_at + interval '1 s',
                   CASE WHEN (m.message_id + mb.user_id) % 2 = 0 THEN m.sent_at + interval '1 min' END
            FROM chat.messages m JOIN chat.members mb ON mb.conversation_id = m.conversation_id AND mb.user_id <> m.sender_id;
            """)
    }

    /// Runs the incremental unread job and checks counts and unread messages against a full
    /// recompute at the same moment.
    func expectUnreadEqualsFull(_ conn: PostgresConnection, _ comment: Comment? = nil,
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try UnreadJob().run(conn, runner: runner)
        #expect(r.mode == .incremental, comment, sourceLocation: sourceLocation)
        try expectUnreadTablesMatch(conn, comment, sourceLocation: sourceLocation)
    }

    func expectUnreadTablesMatch(_ conn: PostgresConnection, _ comment: Comment? = nil,
                                 sourceLocation: SourceLocation = #_sourceLocation) throws {
        let v = try UnreadJob(mode: .verify).run(conn, runner: runner)
        #expect(v.driftCount == 0, "\(comment.map { "\($0): " } ?? "")\(v.drift.prefix(5))", sourceLocation: sourceLocation)
        let full = try QueryFile.named("unread_messages_full.sql").statement()
        let diff = try conn.scalar(Int.self, SQL(unsafeRaw: """
            WITH e AS (\(conn.render(full))), a AS (SELECT conversation_id, user_id, message_id, sent_at FROM chat.unread_messages)
            SELECT (SELECT count(*) FROM (SELECT * FROM e EXCEPT SELECT * FROM a) x) + (SELECT count(*) FROM (SELECT * FROM a EXCEPT SELECT * FROM e) y)
            """))
        #expect(diff == 0, "unread messages differ from a full recompute by \(diff) rows \(comment.map { "(\($0))" } ?? "")", sourceLocation: sourceLocation)
    }

    func unread(_ conn: PostgresConnection, _ conversation: Int, _ user: Int) throws -> Int {
        try conn.queryOne("SELECT unread FROM chat.unread_counts WHERE conversation_id = \(conversation) AND user_id = \(user)")?.decode(Int.self, "unread") ?? -1
    }

    @Test func aMessageInsertedAfterARunWithAnEarlierSentAtIsCounted() throws {
        try TestDatabase.migrated { conn, _ in
            try Self.seedGroup(conn)
            _ = try UnreadJob().run(conn, runner: runner)
            let before = try unread(conn, 100, 2)
            // Committed now, stamped three days ago (a backlog, a phone that was offline).
            try conn.execute("""
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                VALUES (100, 99001, now() - interval '3 days', 1, 'text', 'late')
                """)
            try expectUnreadEqualsFull(conn)
            #expect(try unread(conn, 100, 2) == before + 1)
        }
    }

    @Test func aLeaveOrAJoinRecordedAfterARunStampedBeforeItApplies() throws {
        try TestDatabase.migrated { conn, _ in
            try Self.seedGroup(conn)
            _ = try UnreadJob().run(conn, runner: runner)
            try conn.execute("UPDATE chat.members SET left_at = now() - interval '2 days', change_xid = DEFAULT WHERE conversation_id = 100 AND user_id = 3")
            try conn.execute("INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (100, 5, now() - interval '5 days')")
            try expectUnreadEqualsFull(conn)
            #expect(try unread(conn, 100, 3) == -1)   // no row: not a member
            #expect(try unread(conn, 100, 5) == 4 * 4) // every message of the 4 days since the join, none read
        }
    }

    @Test func aRejoinCountsOnlyTheCurrentMembership() throws {
        try TestDatabase.migrated { conn, _ in
            try Self.seedGroup(conn)
            _ = try UnreadJob().run(conn, runner: runner)
            try conn.execute("UPDATE chat.members SET left_at = now() - interval '8 days', change_xid = DEFAULT WHERE conversation_id = 100 AND user_id = 4")
            _ = try UnreadJob().run(conn, runner: runner)
            try conn.execute("INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (100, 4, now() - interval '2 days' - interval '30 minutes')")
            try expectUnreadEqualsFull(conn)
            // Messages of the last two days (3 per day from the others), less the ones user 4 read.
            let expected = try conn.scalar(Int.self, """
                SELECT count(*) FROM chat.messages m WHERE conversation_id = 100 AND sender_id <> 4 AND sent_at >= now() - interval '2 days 30 minutes'
                  AND NOT EXISTS (SELECT 1 FROM chat.receipts r WHERE r.conversation_id = 100 AND r.message_id = m.message_id AND r.recipient_id = 4 AND r.status = 3)
                """)
            #expect(try unread(conn, 100, 4) == expected)
        }
    }

    @Test func aReadOrADeletionWrittenAfterARunStampedBeforeItApplies() throws {
        try TestDatabase.migrated { conn, _ in
            try Self.seedGroup(conn)
            _ = try UnreadJob().run(conn, runner: runner)
            let before = try unread(conn, 100, 2)
            #expect(before > 2)
            // A read of a 9-day-old message, stamped when it happened on the phone (days ago).
            // (The time computed here: Citus refuses timestamp arithmetic over a column in UPDATE ... SET.)
            let target = try #require(try conn.queryOne("""
                SELECT message_id, sent_at FROM chat.receipts WHERE conversation_id = 100 AND recipient_id = 2 AND status = 2 ORDER BY message_id LIMIT 1
                """))
            try conn.execute("""
                UPDATE chat.receipts SET status = 3, read_at = \(try target.decode(Date.self, "sent_at").addingTimeInterval(3600)), change_xid = DEFAULT
                WHERE conversation_id = 100 AND recipient_id = 2 AND message_id = \(try target.decode(Int64.self, "message_id"))
                """)
            // A deletion of another unread message, stamped yesterday.
            try conn.execute("""
                UPDATE chat.messages SET deleted_at = now() - interval '1 day', change_xid = DEFAULT
                WHERE conversation_id = 100 AND message_id = (SELECT max(message_id) FROM chat.receipts WHERE conversation_id = 100 AND recipient_id = 2 AND status = 2)
                """)
            try expectUnreadEqualsFull(conn)
            #expect(try unread(conn, 100, 2) == before - 2)
            // Undeleted again: it counts again.
            try conn.execute("UPDATE chat.messages SET deleted_at = NULL, change_xid = DEFAULT WHERE deleted_at IS NOT NULL")
            try expectUnreadEqualsFull(conn)
            #expect(try unread(conn, 100, 2) == before - 1)
        }
    }

    @Test func aWriterTransactionOpenAcrossARunIsSeenByTheNextRun() throws {
        try TestDatabase.migrated { conn, settings in
            try Self.seedGroup(conn)
            _ = try UnreadJob().run(conn, runner: runner)
            let before = try unread(conn, 100, 2)
            let writer = try PostgresConnection(settings: settings, logger: TestDatabase.logger)
            try writer.execute("BEGIN")
            // Stamped with now(): the transaction's start, before the run below.
            try writer.execute("""
                UPDATE chat.receipts SET status = 3, read_at = now(), change_xid = DEFAULT
                WHERE conversation_id = 100 AND recipient_id = 2 AND status = 2
                  AND message_id = (SELECT max(message_id) FROM chat.receipts WHERE conversation_id = 100 AND recipient_id = 2 AND status = 2)
                """)
            try writer.execute("""
                UPDATE chat.messages SET deleted_at = now(), change_xid = DEFAULT
                WHERE conversation_id = 100 AND message_id = (SELECT min(message_id) FROM chat.receipts WHERE conversation_id = 100 AND recipient_id = 2 AND status = 2)
                """)
            // The run cannot see the open transaction ...
            try expectUnreadEqualsFull(conn, "while the writer is open")
            #expect(try unread(conn, 100, 2) == before)
            try writer.execute("COMMIT")
            // ... and the next one sees it, although its timestamps are older than the last run.
            try expectUnreadEqualsFull(conn, "after the writer committed")
            #expect(try unread(conn, 100, 2) == before - 2)
        }
    }

    @Test func rowsStampedInTheFutureAreNotCountedTwice() throws {
        try TestDatabase.migrated { conn, _ in
            try Self.seedGroup(conn)
            // A message and a deletion stamped 20 s ahead (an app server whose clock runs fast),
            // present at the first (full) run.
            try conn.execute("""
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                VALUES (100, 99002, now() + interval '20 s', 1, 'text', 'ahead')
                """)
            try conn.execute("""
                UPDATE chat.messages SET deleted_at = now() + interval '20 s', change_xid = DEFAULT
                WHERE conversation_id = 100 AND message_id = (SELECT max(message_id) FROM chat.receipts WHERE conversation_id = 100 AND recipient_id = 2 AND status = 2)
                """)
            #expect(try UnreadJob().run(conn, runner: runner).mode == .full)
            let before = try unread(conn, 100, 2)
            Thread.sleep(forTimeInterval: 0.2)
            try expectUnreadEqualsFull(conn)
            #expect(try unread(conn, 100, 2) == before)
        }
    }

    @Test func aReadWrittenToADuplicateReceiptRowCounts() throws {
        try TestDatabase.migrated { conn, _ in
            try Self.seedGroup(conn)
            _ = try UnreadJob().run(conn, runner: runner)
            let before = try unread(conn, 100, 2)
            // A second row for the same (message, recipient), filed 1 µs off, gets the read.
            try conn.execute("""
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at)
                SELECT conversation_id, message_id, sent_at + interval '1 microsecond', recipient_id, 3, delivered_at, now()
                FROM chat.receipts WHERE conversation_id = 100 AND recipient_id = 2 AND status = 2
                ORDER BY message_id LIMIT 1
                """)
            try expectUnreadEqualsFull(conn)
            #expect(try unread(conn, 100, 2) == before - 1)
        }
    }

    @Test func ingestOfABacklogIsCountedByTheNextRun() throws {
        try TestDatabase.migrated { conn, settings in
            try Self.seedGroup(conn)
            _ = try UnreadJob().run(conn, runner: runner)
            let hourAgo = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3600))
            let dir = try TestPaths.temporaryDirectory()
            let file = dir + "/backlog.ndjson"
            try """
            {"type":"message","conversation_id":100,"message_id":99003,"sender_id":1,"sent_at":"\(hourAgo)","body":"backlog"}
            {"type":"leave","conversation_id":100,"user_id":4,"at":"\(hourAgo)"}
            {"type":"read","conversation_id":200,"message_id":\(try conn.scalar(Int.self, "SELECT min(message_id) FROM chat.receipts WHERE conversation_id = 200 AND recipient_id = 3 AND status = 2")),"recipient_id":3,"at":"\(hourAgo)"}

            """.write(toFile: file, atomically: true, encoding: .utf8)
            let before = (try unread(conn, 100, 2), try unread(conn, 200, 3))
            let r = try runCommand(TestPaths.binary, ["ingest", "--quiet", file, "--database-url", settings.conninfo])
            #expect(r.status == 0, "\(r.stderr)")
            try expectUnreadEqualsFull(conn)
            #expect(try unread(conn, 100, 2) == before.0 + 1)
            #expect(try unread(conn, 100, 4) == -1)
            #expect(try unread(conn, 200, 3) == before.1 - 1)
        }
    }
}
