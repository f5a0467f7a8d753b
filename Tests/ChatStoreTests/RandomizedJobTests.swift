import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

/// Two writer connections and the incremental jobs interleaved at random: writes stamped up to a
/// day in the past or a minute in the future, transactions held open across job runs,
/// duplicate receipts, leaves and rejoins, deletions and undeletions, late reads of old
/// messages, presence. After every job run and at the end, each incremental job's tables equal
/// a full recompute at that moment.
///
/// `CHATSTORE_RANDOM_SEEDS=N` runs N seeds (default 6), `CHATSTORE_RANDOM_STEPS=N` steps per
/// seed (default 120).
@Suite struct RandomizedJobTests {
    static let seeds: [UInt64] = {
        let n = Int(ProcessInfo.processInfo.environment["CHATSTORE_RANDOM_SEEDS"] ?? "") ?? 6
        return (1...max(1, n)).map { UInt64($0) * 7919 }
    }()
    static let steps = Int(ProcessInfo.processInfo.environment["CHATSTORE_RANDOM_STEPS"] ?? "") ?? 120

    /// A writer connection that may hold its transaction open across job runs.
    final class Writer {
        let conn: PostgresConnection
        var open = false
        init(_ settings: ConnectionSettings) throws {
            conn = try PostgresConnection(settings: settings, logger: TestDatabase.logger)
            try conn.execute("SET lock_timeout = '100ms'")
        }
        /// Runs one write; a lock conflict with the other writer rolls this one's transaction back.
        /// `$XID` in the SQL becomes this transaction's id: an INSERT ... SELECT sets change_xid
        /// itself, as writers on Citus must (the default would take a worker's id there).
        func write(_ sql: String) throws {
            if !open {
                try conn.execute("BEGIN")
                open = true
            }
            var sql = sql
            if sql.contains("$XID") {
                sql = sql.replacingOccurrences(of: "$XID", with: String(try conn.scalar(Int64.self, "SELECT pg_current_xact_id()::text::bigint")))
            }
            do { try conn.executeScript(sql) } catch let e as PostgresError where e.sqlState == .lockNotAvailable || e.sqlState == .deadlockDetected
                || e.sqlState == .uniqueViolation || e.sqlState == .checkViolation || e.sqlState == .foreignKeyViolation {
                try conn.execute("ROLLBACK")
                open = false
            }
        }
        func commit() throws {
            if open { try conn.execute("COMMIT"); open = false }
        }
    }

    /// How many of last-seen's receipt cells differ from a recount of every receipt (0 right
    /// after a run, when nothing was written since).
    static func cellsDifferingFromARecount(_ conn: PostgresConnection) throws -> Int {
        guard let state = try conn.queryOne("SELECT bucket_shift, window_bits FROM chat.last_seen_state") else { return -1 }
        let shift = try state.decode(Int.self, "bucket_shift"), wbits = try state.decode(Int.self, "window_bits")
        // The bucket as Migrations/0011_last_seen_cell_windows.sql defines it: the conversation
        // range, then the window of the UTC day (written out here, not taken from the queries).
        let bucket = "((conversation_id >> \(shift)) << \(wbits)) | ((extract(epoch FROM (sent_at AT TIME ZONE 'UTC')::time) * 1000000)::bigint / (86400000000 >> \(wbits)))"
        // Read apart and compared here: on Citus the cells are a coordinator table and the
        // receipts are distributed.
        func rows(_ sql: SQL) throws -> Set<String> {
            Set(try conn.query(sql).map { r in
                [try r.decode(String.self, "sent_day"), String(try r.decode(Int64.self, "bucket")), try r.decode(String.self, "kind"),
                 try r.decode(String.self, "day"), String(try r.decode(Int64.self, "n")), try r.decode(String.self, "s"), String(try r.decode(Int64.self, "h"))]
                    .joined(separator: " ")
            })
        }
        let recount = try rows("""
            SELECT sent_day::text, bucket, kind, day::text, sum(n)::bigint AS n, sum(s)::text AS s, sum(h)::bigint AS h FROM (
                SELECT (sent_at AT TIME ZONE 'UTC')::date AS sent_day, \(unsafeRaw: bucket) AS bucket, 'd' AS kind,
                       (delivered_at AT TIME ZONE 'UTC')::date AS day, 1 AS n, recipient_id AS s, hashint8(recipient_id) AS h
                FROM chat.receipts WHERE delivered_at IS NOT NULL
                UNION ALL
                SELECT (sent_at AT TIME ZONE 'UTC')::date, \(unsafeRaw: bucket), 'r', (read_at AT TIME ZONE 'UTC')::date, 1, recipient_id, hashint8(recipient_id)
                FROM chat.receipts WHERE read_at IS NOT NULL
            ) x GROUP BY 1, 2, 3, 4
            """)
        let stored = try rows("SELECT sent_day::text, bucket, kind::text AS kind, day::text, n, s::text AS s, h FROM chat.last_seen_cells")
        return recount.symmetricDifference(stored).count
    }

    @Test(arguments: seeds) func incrementalJobsEqualAFullRecompute(seed: UInt64) throws {
        try TestDatabase.migrated { conn, settings in
            var rng = SplitMix64(state: seed)
            try ChangeOrderTests.seedGroup(conn)
            try conn.executeScript("""
                INSERT INTO chat.conversations (conversation_id, kind, member_limit, created_by) VALUES (300, 'direct', 2, 1);
                INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (300, 1, '2020-01-01'), (300, 6, '2020-01-01');
                INSERT INTO chat.presence_events (user_id, occurred_at, device_id, state)
                SELECT u, now() - make_interval(hours => h), 'phone', CASE WHEN h % 2 = 0 THEN 'online' ELSE 'offline' END
                FROM generate_series(1, 6) u, generate_series(1, 60, 3) h;
                """)
            var runner = JobRunner(logger: TestDatabase.logger)
            runner.lockTimeout = .milliseconds(300)
            let writers = [try Writer(settings), try Writer(settings)]
            let pm = PartitionManager(logger: TestDatabase.logger)
            var nextMessage = 500_000
            var jobFailures = 0

            // A timestamp up to a day in the past or a minute in the future.
            func stamp() -> String {
                // A constant, not now() arithmetic: Citus refuses stable expressions in CASE and
                // COALESCE, as an application writing to it must know too.
                let offset = rng.chance(0.5) ? -Double(rng.int(86_400)) : Double(rng.int(60))
                return "'\(PostgresTimestamp.format(Date().addingTimeInterval(offset)))'::timestamptz"
            }
            func runJob(_ which: Int) throws {
                do {
                    switch which {
                    case 0: _ = try UnreadJob().run(conn, runner: runner)
                    case 1: _ = try ReceiptAuditJob().run(conn, runner: runner)
                    case 2: _ = try LastSeenJob().run(conn, runner: runner, partitions: pm)
                    default: _ = try ReconcileJob().run(conn, runner: runner)
                    }
                } catch let e as PostgresError where e.sqlState == .lockNotAvailable {
                    jobFailures += 1
                }
            }

            for _ in 0..<Self.steps {
                let w = writers[rng.int(2)]
                let conv = [100, 200, 300][rng.int(3)]
                let user = 1 + rng.int(6)
                switch rng.int(15) {
                case 0, 1:
                    // A message, stamped at any moment of the last day, with receipts for the members.
                    nextMessage += 1
                    try w.write("""
                        INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, change_xid)
                        SELECT \(conv), \(nextMessage), \(stamp()), \(user), 'text', 'r', $XID
                        WHERE EXISTS (SELECT 1 FROM chat.members WHERE conversation_id = \(conv) AND user_id = \(user) AND left_at IS NULL);
                        INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, change_xid)
                        SELECT m.conversation_id, m.message_id, m.sent_at, mb.user_id, $XID FROM chat.messages m
                        JOIN chat.members mb ON mb.conversation_id = m.conversation_id AND mb.left_at IS NULL AND mb.user_id <> m.sender_id
                        WHERE m.conversation_id = \(conv) AND m.message_id = \(nextMessage);
                        """)
                case 2, 3:
                    // A read, late or not, of any message of the member, old ones included.
                    try w.write("""
                        UPDATE chat.receipts SET status = 3, read_at = greatest(sent_at, \(stamp())), delivered_at = coalesce(delivered_at, greatest(sent_at, \(stamp()))),
                               change_xid = DEFAULT
                        WHERE (conversation_id, message_id, recipient_id, sent_at) IN (
                            SELECT conversation_id, message_id, recipient_id, sent_at FROM chat.receipts
                            WHERE conversation_id = \(conv) AND recipient_id = \(user) AND status < 3 ORDER BY (message_id * \(1 + rng.int(97))) % 101 LIMIT \(1 + rng.int(3)))
                        """)
                case 4:
                    try w.write("""
                        UPDATE chat.receipts SET status = greatest(status, 2), delivered_at = coalesce(delivered_at, greatest(sent_at, \(stamp()))), change_xid = DEFAULT
                        WHERE (conversation_id, message_id, recipient_id, sent_at) IN (
                            SELECT conversation_id, message_id, recipient_id, sent_at FROM chat.receipts
                            WHERE conversation_id = \(conv) AND status = 1 ORDER BY (message_id * \(1 + rng.int(97))) % 101 LIMIT 2)
                        """)
                case 5:
                    // A duplicate receipt row 1 µs off, sometimes carrying the read.
                    try w.write("""
                        INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, change_xid, status, delivered_at, read_at)
                        SELECT conversation_id, message_id, sent_at + interval '1 microsecond', recipient_id, $XID,
                               \(rng.chance(0.5) ? "3, coalesce(delivered_at, sent_at), greatest(sent_at, \(stamp()))" : "1, NULL, NULL")
                        FROM chat.receipts WHERE conversation_id = \(conv) AND recipient_id = \(user)
                        ORDER BY (message_id * \(1 + rng.int(97))) % 101 LIMIT 1
                        ON CONFLICT DO NOTHING
                        """)
                case 6:
                    try w.write("""
                        UPDATE chat.messages SET deleted_at = \(stamp()), change_xid = DEFAULT
                        WHERE (conversation_id, message_id, sent_at) IN (
                            SELECT conversation_id, message_id, sent_at FROM chat.messages WHERE conversation_id = \(conv) AND deleted_at IS NULL
                            ORDER BY (message_id * \(1 + rng.int(97))) % 101 LIMIT 1)
                        """)
                case 7:
                    try w.write("""
                        UPDATE chat.messages SET deleted_at = NULL, change_xid = DEFAULT
                        WHERE (conversation_id, message_id, sent_at) IN (
                            SELECT conversation_id, message_id, sent_at FROM chat.messages WHERE conversation_id = \(conv) AND deleted_at IS NOT NULL LIMIT 1)
                        """)
                case 8:
                    // A leave, stamped in the past (never before the join).
                    try w.write("""
                        UPDATE chat.members SET left_at = greatest(joined_at, \(stamp())), change_xid = DEFAULT
                        WHERE conversation_id = \(conv) AND user_id = \(user) AND left_at IS NULL
                        """)
                case 9:
                    // A join or rejoin, stamped in the past, after any earlier leave.
                    try w.write("""
                        INSERT INTO chat.members (conversation_id, user_id, change_xid, joined_at)
                        SELECT \(conv), \(user), $XID, greatest(\(stamp()), (SELECT max(left_at) FROM chat.members WHERE conversation_id = \(conv) AND user_id = \(user)))
                        WHERE \(conv) <> 300 AND NOT EXISTS (SELECT 1 FROM chat.members WHERE conversation_id = \(conv) AND user_id = \(user) AND left_at IS NULL)
                        """)
                case 10:
                    try w.write("""
                        INSERT INTO chat.presence_events (user_id, occurred_at, device_id, state)
                        VALUES (\(user), \(stamp()), '\(["phone", "desktop"][rng.int(2)])', '\(["online", "offline"][rng.int(2)])')
                        ON CONFLICT DO NOTHING
                        """)
                case 11:
                    if rng.chance(0.5) {
                        try w.commit()
                    } else {
                        // The delivery worker records a failed attempt: a retry (or poison) is due.
                        try w.write("""
                            UPDATE chat.delivery_attempts SET attempted_at = now(), outcome = 'failed', error = 'unreachable'
                            WHERE (conversation_id, message_id, recipient_id, attempt) IN (
                                SELECT conversation_id, message_id, recipient_id, attempt FROM chat.delivery_attempts
                                WHERE conversation_id = \(conv) AND attempted_at IS NULL LIMIT 1)
                            """)
                    }
                case 12:
                    // A client that corrects a time it reported: a delivered_at already set is
                    // overwritten with any time of the last three days, a read_at with a later
                    // one (last seen never moves back, so a read corrected to earlier would
                    // differ from a recompute by design), often on another day.
                    let column = rng.chance(0.5) ? "delivered_at" : "read_at"
                    let other = "'\(PostgresTimestamp.format(Date().addingTimeInterval(-Double(rng.int(3 * 86_400)))))'::timestamptz"
                    try w.write("""
                        UPDATE chat.receipts SET \(column) = greatest(sent_at, \(other)), change_xid = DEFAULT
                        WHERE (conversation_id, message_id, recipient_id, sent_at) IN (
                            SELECT conversation_id, message_id, recipient_id, sent_at FROM chat.receipts
                            WHERE conversation_id = \(conv) AND \(column) IS NOT NULL \(column == "read_at" ? "AND read_at < \(other)" : "")
                            ORDER BY (message_id * \(1 + rng.int(97))) % 101 LIMIT 1)
                        """)
                default:
                    try runJob(rng.int(4))
                }
                // Writers commit now and then; an open one stays open across the next job runs.
                for x in writers where x.open && rng.chance(0.3) { try x.commit() }
            }
            for w in writers { try w.commit() }
            for j in 0..<4 { try runJob(j) }
            try runJob(0)

            // Unread: counts and unread messages equal a full recompute.
            try ChangeOrderTests().expectUnreadTablesMatch(conn, "seed \(seed)")

            // Receipt audit: the open anomalies equal a full audit of every message.
            let anomalies = "(SELECT conversation_id, message_id, recipient_id, category, row_count FROM chat.receipt_anomalies)"
            let incremental = try TestDatabase.checksum(conn, anomalies, orderBy: "conversation_id, message_id, recipient_id, category")
            var all = ReceiptAuditJob()
            all.from = Date(timeIntervalSince1970: 0)
            all.to = Date().addingTimeInterval(30 * 86_400)
            _ = try all.run(conn, runner: runner)
            #expect(try TestDatabase.checksum(conn, anomalies, orderBy: "conversation_id, message_id, recipient_id, category") == incremental, "seed \(seed): receipt anomalies")

            // Last seen: every day's rows equal the day recomputed from scratch.
            let activity = try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day")
            let summary = try TestDatabase.checksum(conn, "(SELECT day, active_users, sessions, seconds_online, messages FROM chat.daily_summary)", orderBy: "day")
            var days = LastSeenJob()
            days.from = Date().addingTimeInterval(-45 * 86_400)
            days.to = Date().addingTimeInterval(3 * 86_400)
            _ = try days.run(conn, runner: runner, partitions: pm)
            #expect(try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day") == activity, "seed \(seed): daily activity")
            #expect(try TestDatabase.checksum(conn, "(SELECT day, active_users, sessions, seconds_online, messages FROM chat.daily_summary)", orderBy: "day") == summary, "seed \(seed): daily summary")
            let lastSeenDiff = try conn.scalar(Int.self, """
                SELECT count(*) FROM (
                    SELECT user_id, max(t) AS t FROM (
                        SELECT user_id, occurred_at AS t FROM chat.presence_events
                        UNION ALL SELECT sender_id, sent_at FROM chat.messages
                        UNION ALL SELECT recipient_id, read_at FROM chat.receipts WHERE read_at IS NOT NULL) x GROUP BY user_id
                ) e FULL JOIN chat.user_last_seen s USING (user_id) WHERE e.t IS DISTINCT FROM s.last_seen_at
                """)
            #expect(lastSeenDiff == 0, "seed \(seed): last seen")
            #expect(try Self.cellsDifferingFromARecount(conn) == 0, "seed \(seed): last-seen receipt cells")

            // Reconcile: every undelivered receipt due is tracked (a pending attempt) or dead-lettered.
            let untracked = try conn.scalar(Int.self, """
                SELECT count(*) FROM chat.receipts r
                JOIN chat.messages m ON m.conversation_id = r.conversation_id AND m.message_id = r.message_id AND m.sent_at = r.sent_at
                WHERE r.status = 1 AND r.delivered_at IS NULL AND r.read_at IS NULL AND m.deleted_at IS NULL
                  AND r.sent_at < now() - interval '600 seconds'
                  AND EXISTS (SELECT 1 FROM chat.members mb WHERE mb.conversation_id = r.conversation_id AND mb.user_id = r.recipient_id AND mb.left_at IS NULL)
                  AND NOT EXISTS (SELECT 1 FROM chat.delivery_attempts a WHERE a.conversation_id = r.conversation_id AND a.message_id = r.message_id
                                  AND a.recipient_id = r.recipient_id AND a.attempted_at IS NULL)
                  AND NOT EXISTS (SELECT 1 FROM chat.dead_letters d WHERE d.conversation_id = r.conversation_id AND d.message_id = r.message_id
                                  AND d.recipient_id = r.recipient_id AND d.redriven_at IS NULL)
                """)
            #expect(untracked == 0, "seed \(seed): undelivered receipts neither scheduled nor dead-lettered")
            // ... and no attempt is still pending for a receipt that has been delivered.
            let stale = try conn.scalar(Int.self, """
                SELECT count(*) FROM chat.delivery_attempts a
                JOIN chat.receipts r ON r.conversation_id = a.conversation_id AND r.message_id = a.message_id
                 AND r.recipient_id = a.recipient_id AND r.sent_at = a.sent_at
                WHERE a.attempted_at IS NULL AND (r.status > 1 OR r.delivered_at IS NOT NULL)
                """)
            #expect(stale == 0, "seed \(seed): pending attempts of delivered receipts")
            #expect(jobFailures < Self.steps / 4, "seed \(seed): \(jobFailures) job runs hit a lock timeout")
        }
    }
}
