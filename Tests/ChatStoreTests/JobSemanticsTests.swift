import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

/// The definitions docs/jobs.md states, each pinned down: reconcile's reach, last-seen's days and
/// sessions, the audit's window and categories, and a repair that never loses a read.
@Suite struct JobSemanticsTests {
    let runner = JobRunner(logger: TestDatabase.logger)

    @Test func reconcileReachesTheWholeHistoryOnItsFirstRunAndSchedulesALateMessage() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            try PartitionManager(logger: TestDatabase.logger).ensureRange(conn, from: Date().addingTimeInterval(-310 * 86_400), until: Date())
            // Undelivered for 5, 20 and 300 days; a deleted message and a recipient who left are skipped.
            try conn.executeScript("""
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, deleted_at) VALUES
                  (100, 7001, now() - interval '5 days', 1, 'text', 'a', NULL), (100, 7002, now() - interval '20 days', 1, 'text', 'b', NULL),
                  (100, 7003, now() - interval '300 days', 1, 'text', 'c', NULL), (100, 7004, now() - interval '6 days', 1, 'text', 'd', now());
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id)
                SELECT 100, message_id, sent_at, 2 FROM chat.messages WHERE message_id BETWEEN 7001 AND 7004;
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id)
                SELECT 200, message_id, sent_at, 3 FROM chat.messages WHERE conversation_id = 200 AND sender_id <> 3 ORDER BY message_id LIMIT 1
                ON CONFLICT DO NOTHING;
                UPDATE chat.receipts SET status = 1, delivered_at = NULL, read_at = NULL, change_xid = DEFAULT
                WHERE conversation_id = 200 AND recipient_id = 5 AND message_id = (SELECT min(message_id) FROM chat.receipts WHERE conversation_id = 200 AND recipient_id = 5);
                UPDATE chat.members SET left_at = now(), change_xid = DEFAULT WHERE conversation_id = 200 AND user_id = 5;
                """)
            let first = try ReconcileJob().run(conn, runner: runner)
            #expect(first.scheduled == 1 && first.expired == 2, "\(first)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.dead_letters WHERE reason = 'expired' AND message_id IN (7002, 7003)") == 2)
            // A message inserted after that run, stamped three days before it.
            try conn.executeScript("""
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body) VALUES (100, 7005, now() - interval '3 days', 1, 'text', 'late');
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id) SELECT 100, 7005, now() - interval '3 days', 3;
                """)
            let second = try ReconcileJob().run(conn, runner: runner)
            #expect(second.scheduled == 1 && second.waiting == 1, "\(second)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.delivery_attempts WHERE message_id = 7005") == 1)
            // The deleted message is undeleted and the recipient who left rejoins: both receipts,
            // skipped until now and unchanged themselves, are scheduled.
            try conn.executeScript("""
                UPDATE chat.messages SET deleted_at = NULL, change_xid = DEFAULT WHERE message_id = 7004;
                INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (200, 5, now());
                """)
            let third = try ReconcileJob().run(conn, runner: runner)
            #expect(third.scheduled == 2, "\(third)")
        }
    }

    @Test func reconcileSupersedesALateDeliveryAndExpiresAWaitingPairWithoutProbingTheRest() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            try PartitionManager(logger: TestDatabase.logger).ensureRange(conn, from: Date().addingTimeInterval(-30 * 86_400), until: Date())
            // Three undelivered receipts, 2, 3 and 12 days old.
            try conn.executeScript("""
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body) VALUES
                  (100, 7101, now() - interval '2 days', 1, 'text', 'a'), (100, 7102, now() - interval '3 days', 1, 'text', 'b'),
                  (100, 7103, now() - interval '12 days', 1, 'text', 'c');
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id)
                SELECT 100, message_id, sent_at, 2 FROM chat.messages WHERE message_id BETWEEN 7101 AND 7103;
                """)
            var j = ReconcileJob()
            let first = try j.run(conn, runner: runner)
            #expect(first.scheduled == 3, "\(first)")
            // 7101 is delivered after the run (stamped before it), by a writer in commit order.
            // (The time computed here: Citus refuses stable expressions over columns in UPDATE ... SET.)
            try conn.execute("UPDATE chat.receipts SET status = 2, delivered_at = \(Date().addingTimeInterval(-2 * 86_400 + 120)), change_xid = DEFAULT WHERE message_id = 7101")
            let second = try j.run(conn, runner: runner)
            #expect(second.scheduled == 0 && second.waiting == 2, "\(second)")
            #expect(try conn.scalar(String.self, "SELECT outcome FROM chat.delivery_attempts WHERE message_id = 7101") == "superseded")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.delivery_attempts WHERE attempted_at IS NULL") == 2)
            // Ten days later nothing has changed: 7103 has aged past max_age while waiting.
            j.now = Date().addingTimeInterval(10 * 86_400)
            let third = try j.run(conn, runner: runner)
            #expect(third.expired == 1 && third.waiting == 1, "\(third)")
            #expect(try conn.scalar(String.self, "SELECT reason FROM chat.dead_letters WHERE message_id = 7103") == "expired")
            #expect(try conn.scalar(String.self, "SELECT outcome FROM chat.delivery_attempts WHERE message_id = 7103") == "superseded")
            // The dry run reports what the run would do, and changes nothing.
            try conn.execute("UPDATE chat.delivery_attempts SET attempted_at = now(), outcome = 'failed' WHERE message_id = 7102")
            var dry = j; dry.dryRun = true
            let plan = try dry.run(conn, runner: runner)
            #expect(plan.scheduled == 1 && plan.waiting == 0, "\(plan)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.delivery_attempts WHERE message_id = 7102") == 1)
            let fourth = try j.run(conn, runner: runner)
            #expect(fourth.scheduled == 1, "\(fourth)")
        }
    }

    @Test func lastSeenCountsReadsOfOldMessagesOnTheDayTheyHappen() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            try conn.executeScript("""
                INSERT INTO chat.conversations (conversation_id, kind, member_limit, created_by) VALUES (400, 'direct', 2, 1);
                INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (400, 1, '2020-01-01'), (400, 6, '2020-01-01');
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                SELECT 400, 8000 + d, date_trunc('day', now(), 'UTC') - make_interval(days => d) + interval '1 minute', 1, 'text', 'x' FROM generate_series(0, 15) d;
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at)
                SELECT 400, message_id, sent_at, 6, 2, sent_at FROM chat.messages WHERE conversation_id = 400;
                """)
            _ = try LastSeenJob().run(conn, runner: runner, partitions: PartitionManager(logger: TestDatabase.logger))
            // Today, user 6 reads all 16 (messages 0 to 15 days old), one a second.
            // (Times computed here: Citus refuses timestamp arithmetic over a column in UPDATE ... SET.)
            let today = try conn.scalar(Date.self, "SELECT date_trunc('day', now(), 'UTC')")
            for d in 0..<16 {
                try conn.execute("""
                    UPDATE chat.receipts SET status = 3, read_at = \(today.addingTimeInterval(120 + Double(d))), change_xid = DEFAULT
                    WHERE conversation_id = 400 AND message_id = \(Int64(8000 + d))
                    """)
            }
            let r = try LastSeenJob().run(conn, runner: runner, partitions: PartitionManager(logger: TestDatabase.logger))
            #expect(r.days >= 1)
            #expect(try conn.scalar(Int.self, "SELECT messages_read FROM chat.daily_activity WHERE user_id = 6 AND day = (now() AT TIME ZONE 'UTC')::date") == 16)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.user_last_seen WHERE user_id = 6 AND last_seen_at = date_trunc('day', now(), 'UTC') + interval '2 minutes 15 seconds' AND source = 'read'") == 1)
            // Twelve days ago user 6 only had a delivery: a row, but not an active user that day.
            let day = "(now() AT TIME ZONE 'UTC')::date - 12"
            #expect(try conn.scalar(Int.self, SQL(unsafeRaw: "SELECT receipts_delivered + 10 * (messages_sent + messages_read + sessions) FROM chat.daily_activity WHERE user_id = 6 AND day = \(day)")) == 1)
            #expect(try conn.scalar(Int.self, SQL(unsafeRaw: """
                SELECT s.active_users - (SELECT count(DISTINCT u) FROM (SELECT sender_id AS u FROM chat.messages WHERE (sent_at AT TIME ZONE 'UTC')::date = \(day)
                                                                       UNION SELECT recipient_id FROM chat.receipts WHERE (read_at AT TIME ZONE 'UTC')::date = \(day)) x)
                FROM chat.daily_summary s WHERE s.day = \(day)
                """)) == 0)
            // Run again on the same day: the same rows.
            let before = try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day")
            var again = LastSeenJob()
            again.from = Date().addingTimeInterval(-20 * 86_400)
            _ = try again.run(conn, runner: runner, partitions: PartitionManager(logger: TestDatabase.logger))
            #expect(try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day") == before)
        }
    }

    /// Whether `chat.daily_activity` as the incremental runs left it equals every day since
    /// `since` recomputed from scratch (`jobs last-seen --from`).
    func dailyActivityEqualsARecompute(_ conn: PostgresConnection, since: Date, partitions pm: PartitionManager) throws -> Bool {
        let incremental = try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day")
        var all = LastSeenJob()
        all.from = since
        _ = try all.run(conn, runner: runner, partitions: pm)
        return try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day") == incremental
    }

    /// A client that corrects a time it reported: the receipt's new row says where the read went,
    /// not where it came from. The receipt cells see it leave its old day too.
    @Test func aReadOrDeliveryTimeOverwrittenWithAnotherDayLeavesItsOldDay() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            let pm = PartitionManager(logger: TestDatabase.logger)
            let today = try conn.scalar(Date.self, "SELECT date_trunc('day', now(), 'UTC')")
            let fiveAgo = today.addingTimeInterval(-5 * 86_400), twoAgo = today.addingTimeInterval(-2 * 86_400)
            try conn.executeScript("""
                INSERT INTO chat.conversations (conversation_id, kind, member_limit, created_by) VALUES (400, 'direct', 2, 1);
                INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (400, 1, '2020-01-01'), (400, 6, '2020-01-01');
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                SELECT 400, 8100 + i, '\(PostgresTimestamp.format(fiveAgo))'::timestamptz + make_interval(mins => i), 1, 'text', 'x' FROM generate_series(0, 3) i;
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at)
                SELECT 400, message_id, sent_at, 6, 3, sent_at + interval '1 hour', sent_at + interval '2 hours' FROM chat.messages WHERE conversation_id = 400;
                -- Thirty other conversations the same day, so that conversation 400's cell holds a
                -- small share of the day's receipts and is recounted by key (filtered on Citus).
                INSERT INTO chat.conversations (conversation_id, kind, member_limit, created_by) SELECT 500 + c, 'direct', 2, 2 FROM generate_series(0, 29) c;
                INSERT INTO chat.members (conversation_id, user_id, joined_at) SELECT 500 + c, u, '2020-01-01' FROM generate_series(0, 29) c, (VALUES (2), (3)) v(u);
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                SELECT 500 + c, 9000 + 10 * c + i, '\(PostgresTimestamp.format(fiveAgo))'::timestamptz + make_interval(mins => i), 2, 'text', 'y'
                FROM generate_series(0, 29) c, generate_series(0, 3) i;
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at)
                SELECT conversation_id, message_id, sent_at, 3, 3, sent_at + interval '1 hour', sent_at + interval '2 hours' FROM chat.messages WHERE conversation_id >= 500;
                """)
            _ = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            func activity(_ day: Date) throws -> (delivered: Int, read: Int) {
                let row = try conn.queryOne("SELECT receipts_delivered, messages_read FROM chat.daily_activity WHERE user_id = 6 AND day = (\(PostgresTimestamp.format(day))::timestamptz AT TIME ZONE 'UTC')::date")
                return (try row?.decode(Int.self, "receipts_delivered") ?? 0, try row?.decode(Int.self, "messages_read") ?? 0)
            }
            #expect(try activity(fiveAgo) == (4, 4))
            // Two reads and one delivery corrected to two days ago (times computed here, as on Citus).
            try conn.execute("""
                UPDATE chat.receipts SET read_at = \(twoAgo.addingTimeInterval(3600)), change_xid = DEFAULT
                WHERE conversation_id = 400 AND message_id IN (8100, 8101)
                """)
            try conn.execute("""
                UPDATE chat.receipts SET delivered_at = \(twoAgo.addingTimeInterval(1800)), change_xid = DEFAULT
                WHERE conversation_id = 400 AND message_id = 8102
                """)
            let r = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            #expect(try activity(fiveAgo) == (3, 2), "\(r)")
            #expect(try activity(twoAgo) == (1, 2), "\(r)")
            #expect(try RandomizedJobTests.cellsDifferingFromARecount(conn) == 0)
            // And the incremental rows equal every day recomputed from scratch.
            #expect(try dailyActivityEqualsARecompute(conn, since: today.addingTimeInterval(-10 * 86_400), partitions: pm))
            // A run with nothing new recounts no cell and recomputes no day.
            let quiet = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            #expect(quiet.receiptCells == 0 && quiet.days == 0, "\(quiet)")
        }
    }

    /// Receipts on either side of every window boundary of a day (one microsecond before, on,
    /// and after each, and the day's first and last microsecond), all read again on another
    /// day: each is recounted in its own cell (by key: conversation 400 holds a small share of the
    /// day), so the old day loses every read and the cells equal a recount of every receipt.
    @Test func readsMovedAtTheEdgesOfTheCellWindowsLeaveTheirOldDay() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            let pm = PartitionManager(logger: TestDatabase.logger)
            let today = try conn.scalar(Date.self, "SELECT date_trunc('day', now(), 'UTC')")
            let fiveAgo = PostgresTimestamp.format(today.addingTimeInterval(-5 * 86_400))
            let windows = 1 << LastSeenCells.windowBits, width = 86_400 / windows
            try conn.executeScript("""
                INSERT INTO chat.conversations (conversation_id, kind, member_limit, created_by) VALUES (400, 'direct', 2, 1);
                INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (400, 1, '2020-01-01'), (400, 6, '2020-01-01');
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                SELECT 400, 8000 + row_number() OVER (), t, 1, 'text', 'x' FROM (
                    SELECT '\(fiveAgo)'::timestamptz + make_interval(secs => k * \(width)) + o * interval '1 microsecond' AS t
                    FROM generate_series(1, \(windows - 1)) k, (VALUES (-1), (0), (1)) v(o)
                    UNION ALL SELECT '\(fiveAgo)'::timestamptz
                    UNION ALL SELECT '\(fiveAgo)'::timestamptz + interval '1 day' - interval '1 microsecond') x;
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at)
                SELECT 400, message_id, sent_at, 6, 3, sent_at + interval '1 minute', sent_at + interval '2 minutes' FROM chat.messages WHERE conversation_id = 400;
                INSERT INTO chat.conversations (conversation_id, kind, member_limit, created_by) SELECT 500 + c, 'direct', 2, 2 FROM generate_series(0, 29) c;
                INSERT INTO chat.members (conversation_id, user_id, joined_at) SELECT 500 + c, u, '2020-01-01' FROM generate_series(0, 29) c, (VALUES (2), (3)) v(u);
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                SELECT 500 + c, 9000 + 100 * c + i, '\(fiveAgo)'::timestamptz + make_interval(mins => 20 * i), 2, 'text', 'y'
                FROM generate_series(0, 29) c, generate_series(0, 60) i;
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at)
                SELECT conversation_id, message_id, sent_at, 3, 3, sent_at + interval '1 hour', sent_at + interval '2 hours' FROM chat.messages WHERE conversation_id >= 500;
                """)
            _ = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            #expect(try conn.scalar(Int.self, "SELECT window_bits FROM chat.last_seen_state") == LastSeenCells.windowBits)
            let moved = today.addingTimeInterval(-2 * 86_400 + 3600)
            func reads(_ sql: String) throws -> Int {
                try conn.scalar(Int.self, "SELECT coalesce(sum(messages_read), 0)::int FROM chat.daily_activity WHERE user_id = 6 AND \(unsafeRaw: sql)")
            }
            let before = try reads("day = ('\(fiveAgo)'::timestamptz AT TIME ZONE 'UTC')::date")
            #expect(before == 3 * (windows - 1) + 1)  // the last one was read the next day
            try conn.execute("UPDATE chat.receipts SET read_at = \(moved), change_xid = DEFAULT WHERE conversation_id = 400")
            let r = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            #expect(try reads("day = ('\(fiveAgo)'::timestamptz AT TIME ZONE 'UTC')::date") == 0, "\(r)")
            #expect(try reads("day = ('\(PostgresTimestamp.format(moved))'::timestamptz AT TIME ZONE 'UTC')::date") == 3 * (windows - 1) + 2, "\(r)")
            #expect(try RandomizedJobTests.cellsDifferingFromARecount(conn) == 0)
            #expect(try dailyActivityEqualsARecompute(conn, since: today.addingTimeInterval(-10 * 86_400), partitions: pm))
        }
    }

    /// Cells built before the windows of the day existed (migration 0011 leaves them with
    /// window_bits 0) still detect the next run's changes, and are then rebuilt with windows.
    @Test func cellsWithoutWindowsDetectOnceMoreThenAreRebuiltWithThem() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            let pm = PartitionManager(logger: TestDatabase.logger)
            _ = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            // The cells as migration 0010 built them: conversation ranges only, one per day.
            try conn.executeScript("""
                DELETE FROM chat.last_seen_cells;
                UPDATE chat.last_seen_state SET bucket_shift = 0, window_bits = 0;
                INSERT INTO chat.last_seen_cells (sent_day, bucket, kind, day, n, s, h)
                SELECT (sent_at AT TIME ZONE 'UTC')::date, conversation_id, k, d, count(*), sum(recipient_id), sum(hashint8(recipient_id))
                FROM (SELECT sent_at, conversation_id, recipient_id, 'd'::"char" AS k, (delivered_at AT TIME ZONE 'UTC')::date AS d FROM chat.receipts WHERE delivered_at IS NOT NULL
                      UNION ALL
                      SELECT sent_at, conversation_id, recipient_id, 'r', (read_at AT TIME ZONE 'UTC')::date FROM chat.receipts WHERE read_at IS NOT NULL) x
                GROUP BY 1, 2, 3, 4;
                """)
            // A read moved from its day to today: the old cells must see it leave its day.
            let target = try conn.queryOne("SELECT conversation_id, message_id, recipient_id, read_at FROM chat.receipts WHERE read_at < date_trunc('day', now(), 'UTC') ORDER BY read_at LIMIT 1")!
            let oldDay = try target.decode(Date.self, "read_at")
            let today = try conn.scalar(Date.self, "SELECT date_trunc('day', now(), 'UTC')")
            try conn.execute("""
                UPDATE chat.receipts SET read_at = \(today.addingTimeInterval(60)), change_xid = DEFAULT
                WHERE conversation_id = \(try target.decode(Int64.self, "conversation_id")) AND message_id = \(try target.decode(Int64.self, "message_id"))
                  AND recipient_id = \(try target.decode(Int64.self, "recipient_id"))
                """)
            let r = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            #expect(try conn.scalar(Int.self, "SELECT window_bits FROM chat.last_seen_state") == LastSeenCells.windowBits, "\(r)")
            #expect(try RandomizedJobTests.cellsDifferingFromARecount(conn) == 0)
            #expect(try dailyActivityEqualsARecompute(conn, since: oldDay.addingTimeInterval(-86_400), partitions: pm))
            let next = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            #expect(next.receiptCells == 0 && next.days == 0, "\(next)")
        }
    }

    /// A database whose last-seen ran before the receipt cells existed (the upgrade): its next
    /// run finds receipts by their rows, builds the cells, and later runs use them.
    @Test func lastSeenBuildsItsCellsOnTheFirstRunAfterTheUpgrade() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            let pm = PartitionManager(logger: TestDatabase.logger)
            _ = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            try conn.execute("DELETE FROM chat.last_seen_cells")
            try conn.execute("DELETE FROM chat.last_seen_state")
            let today = try conn.scalar(Date.self, "SELECT date_trunc('day', now(), 'UTC')")
            try conn.execute("""
                UPDATE chat.receipts SET status = 3, read_at = \(today.addingTimeInterval(60)), change_xid = DEFAULT
                WHERE (conversation_id, message_id, recipient_id) IN (SELECT conversation_id, message_id, recipient_id FROM chat.receipts WHERE read_at IS NULL LIMIT 3)
                """)
            let upgrade = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            #expect(upgrade.receiptCells > 0 && upgrade.days >= 1, "\(upgrade)")
            #expect(try RandomizedJobTests.cellsDifferingFromARecount(conn) == 0)
            let next = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            #expect(next.receiptCells == 0 && next.days == 0, "\(next)")
        }
    }

    /// Cells built on an empty database (a deployment that runs the nightly from its first day)
    /// are rebuilt with a wider bucket once the conversation ids outgrow them.
    @Test func lastSeenCellsAreRebuiltWiderWhenTheConversationIdsOutgrowThem() throws {
        try TestDatabase.migrated { conn, _ in
            let pm = PartitionManager(logger: TestDatabase.logger)
            _ = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            #expect(try conn.scalar(Int.self, "SELECT bucket_shift FROM chat.last_seen_state") == 0)
            try ChangeOrderTests.seedGroup(conn)
            try conn.executeScript("""
                INSERT INTO chat.conversations (conversation_id, kind, member_limit, created_by) VALUES (1000000, 'direct', 2, 1);
                INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (1000000, 1, '2020-01-01'), (1000000, 6, '2020-01-01');
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body) VALUES (1000000, 1, now() - interval '1 day', 1, 'text', 'x');
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at)
                SELECT 1000000, 1, sent_at, 6, 3, sent_at, sent_at FROM chat.messages WHERE conversation_id = 1000000;
                """)
            let r = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            let shift = try conn.scalar(Int.self, "SELECT bucket_shift FROM chat.last_seen_state")
            #expect(shift == LastSeenCells.layout(lowestID: 100, highestID: 1_000_000).shift, "\(r)")
            #expect(try RandomizedJobTests.cellsDifferingFromARecount(conn) == 0)
            let next = try LastSeenJob().run(conn, runner: runner, partitions: pm)
            #expect(next.receiptCells == 0 && next.days == 0, "\(next)")
            // And every day equals its recompute.
            #expect(try dailyActivityEqualsARecompute(conn, since: Date().addingTimeInterval(-30 * 86_400), partitions: pm))
        }
    }

    @Test func sessionsSplitAtMidnightKeepTheFirstStartAndEndWithTheirDay() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            // Day D is three days ago. Phone: online D-1 23:00 → offline D 01:00 (split at midnight);
            // online D 10:00, online again 10:05 (keeps 10:00), offline 11:00; online D 20:00, never
            // closed (counts to the end of D). Desktop: a lone offline (no session).
            try conn.executeScript("""
                CREATE TEMP TABLE d AS SELECT date_trunc('day', now(), 'UTC') - interval '3 days' AS d;
                INSERT INTO chat.presence_events (user_id, occurred_at, device_id, state)
                SELECT 6, d + o, dev, st FROM d, (VALUES (interval '-1 hour', 'phone', 'online'), (interval '1 hour', 'phone', 'offline'),
                    (interval '10 hours', 'phone', 'online'), (interval '10 hours 5 minutes', 'phone', 'online'), (interval '11 hours', 'phone', 'offline'),
                    (interval '20 hours', 'phone', 'online'), (interval '12 hours', 'desktop', 'offline')) v(o, dev, st);
                """)
            _ = try LastSeenJob().run(conn, runner: runner, partitions: PartitionManager(logger: TestDatabase.logger))
            let rows = try conn.query("""
                SELECT day - (SELECT (d AT TIME ZONE 'UTC')::date FROM d) AS rel, sessions, seconds_online
                FROM chat.daily_activity WHERE user_id = 6 ORDER BY day
                """).map { (try $0.decode(Int.self, "rel"), try $0.decode(Int.self, "sessions"), try $0.decode(Int.self, "seconds_online")) }
            #expect(rows.count == 2)
            #expect(rows.first.map { $0 == (-1, 1, 3600) } ?? false, "\(rows)")
            #expect(rows.last.map { $0 == (0, 3, 3600 + 3600 + 4 * 3600) } ?? false, "\(rows)")
            // A delivery alone is not activity: user 6 is active on D (online), not on a day with only deliveries.
            #expect(try conn.scalar(Int.self, "SELECT active_users FROM chat.daily_summary WHERE day = (SELECT (d AT TIME ZONE 'UTC')::date FROM d)") >= 1)
        }
    }

    @Test func theAuditSeesAnOldMessageTurnAnomalousAndAManualWindowDoesNotMoveIt() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            let first = try ReceiptAuditJob().run(conn, runner: runner)
            #expect(first.scope == "all" && first.anomalies == 0, "\(first.findings.filter { $0.found > 0 })")
            // Today a receipt of a 9-day-old message gets a read before its delivery.
            let target = try #require(try conn.queryOne("""
                SELECT message_id, delivered_at FROM chat.receipts WHERE conversation_id = 100 AND recipient_id = 2 AND status = 2 AND sent_at < now() - interval '8 days'
                ORDER BY message_id LIMIT 1
                """))
            try conn.execute("""
                UPDATE chat.receipts SET status = 3, read_at = \(try target.decode(Date.self, "delivered_at").addingTimeInterval(-1)), change_xid = DEFAULT
                WHERE conversation_id = 100 AND recipient_id = 2 AND message_id = \(try target.decode(Int64.self, "message_id"))
                """)
            // A run by hand over yesterday only: it does not see it, and leaves the nightly's window alone.
            var manual = ReceiptAuditJob()
            manual.from = Date().addingTimeInterval(-86_400)
            manual.to = Date()
            #expect(try manual.run(conn, runner: runner).anomalies == 0)
            let next = try ReceiptAuditJob().run(conn, runner: runner)
            #expect(next.scope == "changes")
            #expect(next.findings.first { $0.category == "read_before_delivered" }?.found == 1)
            #expect(next.messagesExamined < 5)
            // The night after, nothing new is reported, and the anomaly is still open.
            let after = try ReceiptAuditJob().run(conn, runner: runner)
            #expect(after.anomalies == 0 && after.open == 1)
        }
    }

    @Test func statusAheadOfItsTimesAndReadingHistoryBeforeAJoinAreFlagged() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            try conn.executeScript("""
                UPDATE chat.receipts SET status = 3, read_at = NULL, change_xid = DEFAULT
                WHERE conversation_id = 100 AND recipient_id = 3 AND message_id = (SELECT min(message_id) FROM chat.receipts WHERE conversation_id = 100 AND recipient_id = 3);
                -- User 6 joins group 100 today and reads a message from five days ago.
                INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (100, 6, now() - interval '1 hour');
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at)
                SELECT conversation_id, message_id, sent_at, 6, 3, now(), now() FROM chat.messages
                WHERE conversation_id = 100 AND sent_at < now() - interval '5 days' ORDER BY message_id LIMIT 1;
                """)
            let r = try ReceiptAuditJob().run(conn, runner: runner)
            #expect(r.findings.first { $0.category == "status_ahead_of_times" }?.found == 1)
            #expect(r.findings.first { $0.category == "non_member_receipt" }?.found == 1)
        }
    }

    @Test func aRepairMergesDuplicatesWithoutLosingAReadAndLogsEveryRow() throws {
        try TestDatabase.migrated { conn, _ in
            try ChangeOrderTests.seedGroup(conn)
            // Three rows for one (message, recipient): the row filed under the message's sent_at is
            // delivered only; a copy 1 µs off holds the read; another copy 2 µs off an earlier delivery.
            try conn.executeScript("""
                CREATE TEMP TABLE k AS SELECT conversation_id, message_id, sent_at, recipient_id, delivered_at FROM chat.receipts
                WHERE conversation_id = 100 AND recipient_id = 2 AND status = 2 ORDER BY message_id LIMIT 1;
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at)
                SELECT conversation_id, message_id, sent_at + interval '1 microsecond', recipient_id, 3, delivered_at + interval '5 s', delivered_at + interval '1 min' FROM k
                UNION ALL
                SELECT conversation_id, message_id, sent_at + interval '2 microseconds', recipient_id, 2, delivered_at - interval '1 s', NULL FROM k;
                """)
            var n = Nightly(logger: TestDatabase.logger)
            n.runner = runner
            // The first night reports; the second, with repair, repairs what the first reported.
            let night1 = try n.run(conn)
            #expect(night1.jobs.first { $0.job == "receipts" }?.anomalies["duplicate_receipt"] == 2)
            n.repairReceipts = true
            let night2 = try n.run(conn)
            #expect(night2.jobs.allSatisfy { $0.status == "succeeded" })
            let row = try #require(try conn.queryOne("""
                SELECT r.status, r.delivered_at = k.delivered_at - interval '1 s' AS earliest_delivery, r.read_at = k.delivered_at + interval '1 min' AS read_kept,
                       r.sent_at = k.sent_at AS filed_right, count(*) OVER () AS rows
                FROM chat.receipts r JOIN k ON r.conversation_id = k.conversation_id AND r.message_id = k.message_id AND r.recipient_id = k.recipient_id
                """))
            #expect(try row.decode(Int.self, "status") == 3)
            #expect(try row.decode(Bool.self, "earliest_delivery"))
            #expect(try row.decode(Bool.self, "read_kept"))
            #expect(try row.decode(Bool.self, "filed_right"))
            #expect(try row.decode(Int.self, "rows") == 1)
            let log = try conn.query("""
                SELECT action, count(*) AS n FROM chat.receipt_repairs p JOIN k USING (conversation_id, message_id)
                WHERE p.recipient_id = k.recipient_id GROUP BY action ORDER BY action
                """).map { "\(try $0.decode(String.self, "action"))=\(try $0.decode(Int.self, "n"))" }
            #expect(log == ["delete=2", "update=1"])
            // A repair by hand over a window that holds no open anomaly changes nothing.
            var manual = ReceiptAuditJob(repair: true)
            manual.from = Date().addingTimeInterval(-3 * 86_400)
            manual.to = Date().addingTimeInterval(-2 * 86_400)
            #expect(try manual.run(conn, runner: runner).repaired == 0)
            // The unread counts that ran after the repair in the same night are right, and nothing is open.
            #expect(try UnreadJob(mode: .verify).run(conn, runner: runner).driftCount == 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipt_anomalies") == 0)
        }
    }

    @Test func nightlyTwiceOnOneDayGivesTheSameRows() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 120, days: 3)
            var n = Nightly(logger: TestDatabase.logger)
            n.runner = runner
            _ = try n.run(conn)
            let a1 = try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day")
            let s1 = try TestDatabase.checksum(conn, "(SELECT day, active_users, sessions, seconds_online, messages FROM chat.daily_summary)", orderBy: "day")
            let u1 = try TestDatabase.checksum(conn, "(SELECT conversation_id, user_id, unread, last_message_at FROM chat.unread_counts)", orderBy: "conversation_id, user_id")
            _ = try n.run(conn)
            #expect(try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day") == a1)
            #expect(try TestDatabase.checksum(conn, "(SELECT day, active_users, sessions, seconds_online, messages FROM chat.daily_summary)", orderBy: "day") == s1)
            #expect(try TestDatabase.checksum(conn, "(SELECT conversation_id, user_id, unread, last_message_at FROM chat.unread_counts)", orderBy: "conversation_id, user_id") == u1)
        }
    }
}
