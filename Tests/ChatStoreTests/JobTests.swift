import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct JobTests {
    let runner = JobRunner(logger: TestDatabase.logger)

    @Test func incrementalUnreadEqualsAFullRecomputeAfterANewDay() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 200, days: 6)
            // The first run's watermark is 10 minutes ago; the new day's changes happen after it.
            let w1 = Date().addingTimeInterval(-600)
            var first = UnreadJob(); first.now = w1
            #expect(try first.run(conn, runner: runner).mode == .full)
            // A new day: new messages in busy conversations, reads of older unread messages (also
            // days old: a user back from being offline), deletions (also of old messages), a member
            // leaving, a member joining a group.
            // An INSERT ... SELECT sets change_xid itself: on Citus it may run on the shards, where
            // the default would take the workers' transaction ids (docs/citus.md).
            let xid = try conn.scalar(Int64.self, "SELECT pg_current_xact_id()::text::bigint")
            try conn.executeScript("""
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, change_xid)
                SELECT m.conversation_id, m.message_id + 1000, now() - interval '1 minute' + (random() * interval '30 s'), m.sender_id, 'text', 'new', \(xid)
                FROM (SELECT DISTINCT ON (conversation_id) conversation_id, message_id, sender_id FROM chat.messages ORDER BY conversation_id, sent_at DESC) m
                WHERE m.conversation_id % 3 = 0;
                UPDATE chat.receipts SET status = 3, read_at = now() - interval '10 s', delivered_at = least(delivered_at, now() - interval '20 s'), updated_at = now(), change_xid = DEFAULT
                WHERE status < 3 AND read_at IS NULL AND sent_at > now() - interval '30 hours' AND (message_id % 4) = 0;
                UPDATE chat.receipts SET status = 3, read_at = now() - interval '8 s', delivered_at = least(delivered_at, now() - interval '9 s'), updated_at = now(), change_xid = DEFAULT
                WHERE status < 3 AND read_at IS NULL AND sent_at < now() - interval '3 days' AND (message_id % 5) = 0;
                UPDATE chat.messages SET deleted_at = now() - interval '5 s', change_xid = DEFAULT
                WHERE sent_at > now() - interval '30 hours' AND deleted_at IS NULL AND (message_id % 50) = 1;
                UPDATE chat.messages SET deleted_at = now() - interval '4 s', change_xid = DEFAULT
                WHERE sent_at < now() - interval '3 days' AND deleted_at IS NULL AND (message_id % 40) = 3;
                UPDATE chat.members SET left_at = now() - interval '3 s', change_xid = DEFAULT
                WHERE (conversation_id, user_id) IN (SELECT conversation_id, user_id FROM chat.members mb JOIN chat.conversations c USING (conversation_id)
                                                     WHERE c.kind = 'group' AND mb.role = 'member' AND mb.left_at IS NULL ORDER BY 1, 2 LIMIT 3);
                INSERT INTO chat.members (conversation_id, user_id, joined_at)
                SELECT c.conversation_id, u.user_id, now() - interval '2 minutes'
                FROM (SELECT conversation_id FROM chat.conversations WHERE kind = 'group' ORDER BY 1 LIMIT 1) c,
                     (SELECT user_id FROM chat.users u WHERE u.user_id NOT IN (SELECT user_id FROM chat.members) ORDER BY 1 LIMIT 2) u;
                """)
            var inc = UnreadJob(); inc.now = Date()
            let r = try inc.run(conn, runner: runner)
            #expect(r.mode == .incremental)
            #expect(r.pairsRecomputed >= 3)
            #expect(r.rowsChanged > 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts WHERE sent_at < now() - interval '3 days' AND read_at > now() - interval '1 minute'") > 0)
            let verify = try UnreadJob(mode: .verify).run(conn, runner: runner)
            #expect(verify.driftCount == 0, "\(verify.drift.prefix(5))")
        }
    }

    @Test func verifyFindsDriftAndRepairFixesIt() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 120, days: 3)
            try UnreadJob(mode: .full).run(conn, runner: runner)
            try conn.execute("UPDATE chat.unread_counts SET unread = unread + 7 WHERE (conversation_id + user_id) % 10 = 0")
            let drifted = try conn.scalar(Int.self, "SELECT count(*) FROM chat.unread_counts WHERE (conversation_id + user_id) % 10 = 0")
            let v = try UnreadJob(mode: .verify).run(conn, runner: runner)
            #expect(v.driftCount == drifted)
            #expect(v.drift.allSatisfy { $0.stored! == $0.expected! + 7 })
            let rep = try UnreadJob(mode: .repair).run(conn, runner: runner)
            #expect(rep.driftCount == drifted)
            #expect(try UnreadJob(mode: .verify).run(conn, runner: runner).driftCount == 0)
            // The CLI says so with exit code 2.
            try conn.execute("UPDATE chat.unread_counts SET unread = unread + 1 WHERE conversation_id = (SELECT min(conversation_id) FROM chat.unread_counts)")
            let cli = try runCommand(TestPaths.binary, ["jobs", "unread", "--verify", "--database-url", settings.conninfo])
            #expect(cli.status == 2)
        }
    }

    /// The full recompute compares and writes the unread rows a chunk of days at a time: a row
    /// missing from a day, a row too many in a day with messages and one in a stretch of time
    /// with none (before every chunk) are each found by --verify and put right by --repair.
    @Test func verifyAndRepairCompareTheUnreadRowsChunkByChunk() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 120, days: 3)
            try UnreadJob(mode: .full).run(conn, runner: runner)
            let pairs = try conn.query("SELECT DISTINCT conversation_id, user_id FROM chat.unread_messages ORDER BY 1, 2 LIMIT 3").map {
                (try $0.decode(Int64.self, "conversation_id"), try $0.decode(Int64.self, "user_id"))
            }
            #expect(pairs.count == 3)
            let before = try TestDatabase.checksum(conn, "chat.unread_messages", orderBy: "conversation_id, user_id, message_id, sent_at")
            try conn.execute("""
                DELETE FROM chat.unread_messages WHERE (conversation_id, user_id, message_id) =
                    (SELECT conversation_id, user_id, message_id FROM chat.unread_messages WHERE conversation_id = \(pairs[0].0) AND user_id = \(pairs[0].1) ORDER BY message_id LIMIT 1)
                """)
            try conn.execute("""
                INSERT INTO chat.unread_messages (conversation_id, user_id, message_id, sent_at)
                SELECT \(pairs[1].0), \(pairs[1].1), -1, max(sent_at) FROM chat.messages
                """)
            try conn.execute("INSERT INTO chat.unread_messages VALUES (\(pairs[2].0), \(pairs[2].1), -2, '2001-01-01 00:00:00+00')")
            let v = try UnreadJob(mode: .verify).run(conn, runner: runner)
            #expect(v.driftCount == 3, "\(v.drift)")
            #expect(Set(v.drift.map { "\($0.conversationId):\($0.userId)" }) == Set(pairs.map { "\($0.0):\($0.1)" }))
            _ = try UnreadJob(mode: .repair).run(conn, runner: runner)
            #expect(try UnreadJob(mode: .verify).run(conn, runner: runner).driftCount == 0)
            #expect(try TestDatabase.checksum(conn, "chat.unread_messages", orderBy: "conversation_id, user_id, message_id, sent_at") == before)
        }
    }

    @Test func receiptRepairLeavesTheAuditCleanAndRecordsEveryChange() throws {
        try TestDatabase.migrated { conn, settings in
            let key = try TestDatabase.generate(settings, users: 200, days: 3, anomalyRate: 0.02)
            let unreadBefore = try UnreadJob(mode: .full).run(conn, runner: runner).totalUnread
            let receiptsBefore = try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts")
            let repaired = try ReceiptAuditJob(repair: true).run(conn, runner: runner)
            let planted = key.anomalies.values.reduce(0, +)
            #expect(repaired.anomalies == planted)
            #expect(repaired.repaired == planted)
            let changes = try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipt_repairs WHERE run_id = \(repaired.runID)")
            #expect(changes == planted)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipt_repairs WHERE action = 'delete' AND old_value IS NULL") == 0)
            let deleted = (key.anomalies["duplicate_receipt"] ?? 0) + (key.anomalies["sender_receipt"] ?? 0) + (key.anomalies["non_member_receipt"] ?? 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts") == receiptsBefore - deleted + (key.anomalies["missing_receipt"] ?? 0))
            // A second audit is clean; unread counts did not change.
            let again = try ReceiptAuditJob().run(conn, runner: runner)
            #expect(again.anomalies == 0, "\(again.findings.filter { $0.found > 0 })")
            #expect(try UnreadJob(mode: .verify).run(conn, runner: runner).totalUnread == unreadBefore)
            #expect(try UnreadJob(mode: .verify).run(conn, runner: runner).driftCount == 0)
        }
    }

    @Test func aSecondConcurrentRunWaitsBoundedThenExitsWithItsOwnCodeNamingTheHolder() throws {
        try TestDatabase.migrated { conn, settings in
            let holder = try PostgresConnection(settings: settings, logger: TestDatabase.logger)
            #expect(try holder.tryAdvisoryLock(JobRunner.lockKey("unread")))
            // It waits --lock-wait for the lock, then exits 3 naming who holds it.
            let t0 = Date()
            let r = try runCommand(TestPaths.binary, ["jobs", "unread", "--lock-wait", "1", "--database-url", settings.conninfo])
            #expect(r.status == 3)
            #expect(r.stderr.contains("another unread run is in progress"))
            #expect(r.stderr.contains("by pid \(holder.backendPID) (chatstore"), "\(r.stderr)")
            #expect(Date().timeIntervalSince(t0) >= 1 && Date().timeIntervalSince(t0) < 5)
            var quick = runner
            quick.lockWait = .milliseconds(200)
            #expect(throws: JobBusy.self) { try UnreadJob().run(conn, runner: quick) }
            #expect(try holder.tryAdvisoryLock(JobRunner.lockKey("nightly")))
            let n = try runCommand(TestPaths.binary, ["nightly", "--lock-wait", "1", "--database-url", settings.conninfo])
            #expect(n.status == 3)
            // Once the holder lets go while a run waits, the run goes ahead.
            let waiting = try spawnCommand(TestPaths.binary, ["jobs", "unread", "--quiet", "--lock-wait", "20", "--database-url", settings.conninfo])
            Thread.sleep(forTimeInterval: 0.5)
            #expect(try holder.advisoryUnlock(JobRunner.lockKey("unread")))
            #expect(waitCommand(waiting) == 0)
        }
    }

    @Test func reconcileRetriesWithBackoffThenDeadLettersExpiredAndPoison() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.seedConversation(conn)
            try PartitionManager(logger: TestDatabase.logger).ensureRange(conn, from: Date().addingTimeInterval(-30 * 86_400), until: Date().addingTimeInterval(86_400))
            // Message 1: recent, undelivered. Message 2: 20 days old, undelivered. Message 3: delivered.
            try conn.executeScript("""
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body) VALUES
                  (100, 1, now() - interval '1 hour', 1, 'text', 'a'), (100, 2, now() - interval '20 days', 1, 'text', 'b'),
                  (100, 3, now() - interval '1 hour', 1, 'text', 'c');
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at)
                SELECT conversation_id, message_id, sent_at, 2, CASE WHEN message_id = 3 THEN 2 ELSE 1 END,
                       CASE WHEN message_id = 3 THEN sent_at + interval '1 s' END FROM chat.messages;
                """)
            var j = ReconcileJob()
            let dry = { () -> ReconcileJob in var d = j; d.dryRun = true; return d }()
            let plan = try dry.run(conn, runner: runner)
            // The first run reaches the whole history: message 2 is older than the default 14 days.
            #expect(plan.scheduled == 1 && plan.expired == 1)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.delivery_attempts") == 0)
            j.maxAge = 19 * 86_400
            var r = try j.run(conn, runner: runner)
            #expect(r.scheduled == 1 && r.expired == 1 && r.poison == 0)
            // Idempotent: a second run schedules nothing new.
            r = try j.run(conn, runner: runner)
            #expect(r.scheduled == 0 && r.waiting == 1)
            // Attempts keep failing: backoff grows as n^4 until max attempts, then poison.
            j.maxAttempts = 3
            var delays: [Double] = []
            for _ in 0..<3 {
                delays.append(try conn.scalar(Double.self, "SELECT extract(epoch FROM max(scheduled_at) - now())::float8 FROM chat.delivery_attempts WHERE message_id = 1 AND attempted_at IS NULL"))
                try conn.execute("UPDATE chat.delivery_attempts SET attempted_at = now(), outcome = 'failed', error = 'device unreachable' WHERE message_id = 1 AND attempted_at IS NULL")
                r = try j.run(conn, runner: runner)
            }
            #expect(delays[1] > delays[0] * 10 && delays[2] > delays[1] * 3)
            #expect(r.poison == 1)
            let dl = try #require(try conn.queryOne("SELECT reason, attempts, last_error FROM chat.dead_letters WHERE message_id = 1"))
            #expect(try dl.decode(String.self, "reason") == "poison")
            #expect(try dl.decode(Int.self, "attempts") == 3)
            #expect(try dl.decode(String.self, "last_error") == "device unreachable")
            #expect(try conn.scalar(String.self, "SELECT reason FROM chat.dead_letters WHERE message_id = 2") == "expired")
            // Redrive: dry run changes nothing; --limit 1 moves one; the redriven one gets a fresh attempt.
            var rd = RedriveJob(); rd.dryRun = true
            #expect(try rd.run(conn, runner: runner).redriven == 2)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.dead_letters WHERE redriven_at IS NULL") == 2)
            rd.dryRun = false; rd.limit = 1; rd.reason = "poison"
            let moved = try rd.run(conn, runner: runner)
            #expect(moved.redriven == 1 && moved.byReason == ["poison": 1])
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.delivery_attempts WHERE message_id = 1 AND attempted_at IS NULL") == 1)
            // After redrive the old attempts no longer count: reconcile waits on the new attempt.
            r = try j.run(conn, runner: runner)
            #expect(r.poison == 0 && r.waiting == 1)
        }
    }

    @Test func lastSeenRunTwiceForADayGivesTheSameRows() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 120, days: 3)
            var j = LastSeenJob()
            j.from = TestDatabase.generatorStart
            j.to = TestDatabase.generatorStart.addingTimeInterval(3 * 86_400)
            let pm = PartitionManager(logger: TestDatabase.logger)
            let r1 = try j.run(conn, runner: runner, partitions: pm)
            #expect(r1.days == 3)
            let a1 = try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day")
            let s1 = try TestDatabase.checksum(conn, "chat.daily_summary", orderBy: "day")
            _ = try j.run(conn, runner: runner, partitions: pm)
            #expect(try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day") == a1)
            #expect(try TestDatabase.checksum(conn, "chat.daily_summary", orderBy: "day") == s1)
            // Daily active users equal an independent count of distinct senders, receivers, readers and online users.
            let day = PostgresTimestamp.format(TestDatabase.generatorStart.addingTimeInterval(86_400))
            let dau = try conn.scalar(Int.self, "SELECT active_users FROM chat.daily_summary WHERE day = \(day)::date")
            let independent = try conn.scalar(Int.self, """
                SELECT count(DISTINCT u) FROM (
                  SELECT sender_id u FROM chat.messages WHERE sent_at::date = \(day)::date
                  UNION SELECT recipient_id FROM chat.receipts WHERE delivered_at::date = \(day)::date OR read_at::date = \(day)::date
                  UNION SELECT user_id FROM chat.presence_events WHERE occurred_at::date = \(day)::date) x
                """)
            #expect(dau == independent)
            let lastSeen = try conn.scalar(Int.self, "SELECT count(*) FROM chat.user_last_seen")
            #expect(lastSeen > 100)
            // Retention: raw presence partitions older than retention are dropped once rolled up.
            try conn.execute("UPDATE chat.partition_config SET retention = interval '8 days' WHERE parent_table = 'presence_events'")
            let r3 = try j.run(conn, runner: runner, partitions: pm)
            #expect(r3.presencePartitionsDropped.count == 2)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.daily_summary") == 3)
        }
    }

    @Test func nightlyRepairsUnreadDriftWeekly() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 100, days: 2)
            var n = Nightly(logger: TestDatabase.logger)
            n.runner = runner
            _ = try n.run(conn)
            try conn.execute("UPDATE chat.unread_counts SET unread = unread + 5 WHERE conversation_id % 7 = 0")
            // Within the week: incremental, the drift stays (verify would report it).
            _ = try n.run(conn)
            #expect(try UnreadJob(mode: .verify).run(conn, runner: runner).driftCount > 0)
            // A week after the last full run, the nightly run recomputes and repairs.
            try conn.execute("UPDATE chat.job_runs SET started_at = started_at - interval '8 days' WHERE job = 'unread'")
            let s = try n.run(conn)
            #expect((s.jobs.first { $0.job == "unread" }?.anomalies["unread_drift_repaired"] ?? 0) > 0)
            #expect(try UnreadJob(mode: .verify).run(conn, runner: runner).driftCount == 0)
        }
    }

    @Test func nightlyRunsEveryJobAndWritesPrometheusMetrics() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 120, days: 3)
            let dir = try TestPaths.temporaryDirectory()
            let r = try runCommand(TestPaths.binary, ["nightly", "--json", "--metrics-file", dir + "/chatstore.prom", "--database-url", settings.conninfo])
            #expect(r.status == 2, "\(r.stderr)")   // planted anomalies were found
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let summary = try decoder.decode(Nightly.Summary.self, from: Data(r.stdout.utf8))
            #expect(summary.jobs.map(\.job) == ["partitions", "reconcile", "receipts", "unread", "last-seen"])
            #expect(summary.jobs.allSatisfy { $0.status == "succeeded" })
            let prom = try String(contentsOfFile: dir + "/chatstore.prom", encoding: .utf8)
            #expect(prom.contains("chatstore_up 1\n"))
            #expect(prom.contains("chatstore_job_success{job=\"unread\"} 1\n"))
            #expect(prom.contains("# TYPE chatstore_anomalies gauge"))
            #expect(prom.contains("chatstore_job_last_success_timestamp_seconds{job=\"unread\"} "))
            for line in prom.split(separator: "\n") where !line.hasPrefix("#") {
                #expect(line.split(separator: " ").count == 2, "\(line)")
                #expect(Double(line.split(separator: " ").last!) != nil)
            }
            try promtoolAccepts(dir + "/chatstore.prom")
            // A failed job: success 0, and no made-up values for it (the unread total is left out).
            try conn.execute("ALTER TABLE chat.unread_counts RENAME TO unread_counts_away")
            let failed = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--metrics-file", dir + "/chatstore.prom", "--database-url", settings.conninfo])
            #expect(failed.status == 1)
            let f = try String(contentsOfFile: dir + "/chatstore.prom", encoding: .utf8)
            #expect(f.contains("chatstore_job_success{job=\"unread\"} 0\n"), "\(f)")
            #expect(!f.contains("chatstore_unread_messages"))
            #expect(!f.contains("chatstore_job_changed_rows{job=\"unread\"}"))
            #expect(f.contains("chatstore_job_last_success_timestamp_seconds{job=\"unread\"} "))
            try promtoolAccepts(dir + "/chatstore.prom")
            try conn.execute("ALTER TABLE chat.unread_counts_away RENAME TO unread_counts")
            // A run that cannot connect replaces the file with chatstore_up 0, keeping the last
            // success times.
            let down = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--metrics-file", dir + "/chatstore.prom",
                                                         "--database-url", "host=/nonexistent dbname=x connect_timeout=2"])
            #expect(down.status != 0)
            let d = try String(contentsOfFile: dir + "/chatstore.prom", encoding: .utf8)
            #expect(d.contains("chatstore_up 0\n"), "\(d)")
            #expect(d.contains("chatstore_job_last_success_timestamp_seconds{job=\"unread\"} "))
            #expect(!d.contains("chatstore_job_success"))
            try promtoolAccepts(dir + "/chatstore.prom")
            // Every run is in the ledger.
            #expect(try conn.scalar(Int.self, "SELECT count(DISTINCT job) FROM chat.job_runs WHERE status = 'succeeded'") >= 5)
            // Quiet in cron: --quiet prints nothing on stdout.
            let q = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--repair-receipts", "--database-url", settings.conninfo])
            #expect(q.stdout.isEmpty)
            let clean = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--database-url", settings.conninfo])
            #expect(clean.status == 0, "\(clean.stderr)")
        }
    }

    /// `nightly --jobs 2`: while one lane waits for unread's lock (held here), the other runs the
    /// audit, last-seen and reconcile; with --repair-receipts every job that reads receipts waits
    /// for the repairs. The results are those of a run one job after another.
    @Test func nightlyWithTwoJobsAtOnceRunsTheOthersWhileOneWaits() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 120, days: 3)
            let unreadLock = JobRunner.lockKey("unread")
            #expect(try conn.tryAdvisoryLock(unreadLock))
            let box = CommandBox()
            let url = settings.conninfo
            let t = Thread { box.set(try? runCommand(TestPaths.binary, ["nightly", "--json", "--jobs", "2", "--lock-wait", "60", "--database-url", url])) }
            t.start()
            // Until the other lane has run everything else (or 30 s).
            var others = 0
            for _ in 0..<300 where others < 3 {
                Thread.sleep(forTimeInterval: 0.1)
                others = try conn.scalar(Int.self, "SELECT count(*) FROM chat.job_runs WHERE job IN ('receipts', 'last-seen', 'reconcile') AND status = 'succeeded'")
            }
            #expect(others == 3, "the other jobs did not run while unread waited for its lock")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.job_runs WHERE job = 'unread'") == 0)
            _ = try conn.advisoryUnlock(unreadLock)
            let r = try box.wait()
            #expect(r.status == 2, "\(r.stderr)")   // planted anomalies were found
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let summary = try decoder.decode(Nightly.Summary.self, from: Data(r.stdout.utf8))
            #expect(summary.jobs.map(\.job) == ["partitions", "reconcile", "receipts", "unread", "last-seen"])
            #expect(summary.jobs.allSatisfy { $0.status == "succeeded" }, "\(summary.jobs)")
            #expect(summary.unreadTotal == (try conn.scalar(Int.self, "SELECT coalesce(sum(unread), 0)::int FROM chat.unread_counts")))
            #expect(try UnreadJob(mode: .verify).run(conn, runner: runner).driftCount == 0)
            // What the audit found equals a full audit of the same window by hand.
            let open = try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipt_anomalies")
            #expect(open > 0)
            let byHand = try runCommand(TestPaths.binary, ["jobs", "receipts", "--json", "--from", "2000-01-01", "--to", "2100-01-01", "--database-url", url])
            #expect(byHand.status == 2, "\(byHand.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipt_anomalies") == open)
            // With repairs, the jobs that read receipts start after the audit committed.
            try conn.execute("UPDATE chat.receipts SET read_at = NULL, updated_at = now(), change_xid = DEFAULT WHERE status = 3 AND (message_id % 7) = 0")
            let before = try conn.scalar(Int64.self, "SELECT max(run_id) FROM chat.job_runs")
            let rep = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--jobs", "2", "--repair-receipts", "--database-url", url])
            #expect([0, 2].contains(rep.status), "\(rep.stderr)")
            let order = try conn.query("""
                SELECT job, started_at >= (SELECT finished_at FROM chat.job_runs WHERE job = 'receipts' AND run_id > \(before)) AS after_audit
                FROM chat.job_runs WHERE run_id > \(before) AND job IN ('reconcile', 'unread', 'last-seen')
                """)
            #expect(order.count == 3)
            for row in order {
                let job = try row.decode(String.self, "job")
                #expect(try row.decode(Bool.self, "after_audit"), "\(job) started before the repairs committed")
            }
            #expect(try UnreadJob(mode: .verify).run(conn, runner: runner).driftCount == 0)
            // A bad value is a usage error.
            let bad = try runCommand(TestPaths.binary, ["nightly", "--jobs", "0", "--database-url", url])
            #expect(bad.status == 64)
            #expect(bad.stderr.contains("--jobs must be at least 1"))
        }
    }

    /// A window's audit reads each day's messages where they are and keeps the day's unmatched
    /// receipts as orphan candidates: a receipt filed across midnight from its message (within
    /// a day) belongs to that message, not an orphan, while a receipt with no message is one.
    @Test func aReceiptFiledAcrossMidnightIsNotAnOrphanInAWindow() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 100, days: 4, anomalyRate: 0)
            try conn.executeScript("""
                CREATE TEMP TABLE t AS
                SELECT c.conversation_id, (SELECT max(message_id) + 1 FROM chat.messages m WHERE m.conversation_id = c.conversation_id) AS message_id,
                       (SELECT date_trunc('day', min(sent_at), 'UTC') + interval '2 days' - interval '10 minutes' FROM chat.messages) AS sent_at,
                       (SELECT min(user_id) FROM chat.members x WHERE x.conversation_id = c.conversation_id AND x.left_at IS NULL) AS sender_id
                FROM (SELECT conversation_id FROM chat.members WHERE left_at IS NULL GROUP BY 1 HAVING count(*) >= 3 ORDER BY 1 LIMIT 1) c;
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                SELECT conversation_id, message_id, sent_at, sender_id, 'text', 'late at night' FROM t;
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status)
                SELECT DISTINCT t.conversation_id, t.message_id, t.sent_at + interval '20 minutes', x.user_id, 1
                FROM t JOIN chat.members x ON x.conversation_id = t.conversation_id AND x.user_id <> t.sender_id
                     AND x.joined_at <= t.sent_at AND (x.left_at IS NULL OR t.sent_at < x.left_at);
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status)
                SELECT conversation_id, message_id + 1000, sent_at + interval '20 minutes', sender_id, 1 FROM t;
                -- one recipient also has a copy filed on the message's own day: a duplicate
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status)
                SELECT t.conversation_id, t.message_id, t.sent_at, min(r.recipient_id), 1
                FROM t JOIN chat.receipts r USING (conversation_id, message_id) GROUP BY 1, 2, 3;
                """)
            let key = try conn.scalar(String.self, "SELECT conversation_id || ':' || message_id FROM t")
            let crossing = try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts r JOIN t USING (conversation_id, message_id)")
            #expect(crossing >= 3)
            let r = try runCommand(TestPaths.binary, ["jobs", "receipts", "--json", "--from", "2000-01-01", "--to", "2100-01-01", "--database-url", settings.conninfo])
            #expect([0, 2].contains(r.status), "\(r.stderr)")
            let report = try JSONDecoder().decode(ReceiptAuditJob.Report.self, from: Data(r.stdout.utf8))
            let orphans = report.findings.first { $0.category == "orphan_receipt" }
            #expect(orphans?.found == 1, "\(report.findings)")
            #expect(orphans?.samples.allSatisfy { !$0.hasPrefix(key + ":") } == true)
            // For the message whose receipts crossed midnight, only the one duplicate is open:
            // its copies on both days were seen together.
            #expect(try conn.scalar(String.self, "SELECT string_agg(category || ':' || row_count, ',') FROM chat.receipt_anomalies a JOIN t USING (conversation_id, message_id)") == "duplicate_receipt:1")
        }
    }

    /// `jobs receipts --jobs 2` audits the later half of a window's days on a second connection
    /// in the same snapshot, and finds exactly what one connection finds: orphans (receipts with
    /// no message, also one whose receipts span two days) on either side of the split included.
    @Test func anAuditOnTwoConnectionsFindsWhatOneFinds() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 200, days: 5)
            let xid = try conn.scalar(Int64.self, "SELECT pg_current_xact_id()::text::bigint")
            try conn.executeScript("""
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, change_xid)
                SELECT conversation_id, message_id + 100000000, sent_at, recipient_id, status, delivered_at, read_at, \(xid)
                FROM chat.receipts WHERE (message_id % 211) = 0;
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, change_xid)
                SELECT conversation_id, 200000000 + k, sent_at - k * interval '13 hours', recipient_id, 1, NULL, NULL, \(xid)
                FROM (SELECT * FROM chat.receipts ORDER BY sent_at DESC LIMIT 1) r, generate_series(0, 1) k;
                """)
            let url = settings.conninfo
            func audit(_ jobs: Int) throws -> (report: ReceiptAuditJob.Report, rows: String) {
                let r = try runCommand(TestPaths.binary, ["jobs", "receipts", "--json", "--jobs", String(jobs), "--from", "2000-01-01", "--to", "2100-01-01", "--database-url", url])
                #expect(r.status == 2, "\(r.stderr)")
                let report = try JSONDecoder().decode(ReceiptAuditJob.Report.self, from: Data(r.stdout.utf8))
                let rows = try conn.scalar(String.self, """
                    SELECT string_agg(concat_ws(':', conversation_id, message_id, recipient_id, category, row_count, sent_at), ',' ORDER BY conversation_id, message_id, recipient_id, category)
                    FROM chat.receipt_anomalies
                    """)
                return (report, rows)
            }
            let one = try audit(1), two = try audit(2), again = try audit(1)
            #expect(one.report.connections == 1)
            // On Citus one connection already runs the audit on every shard at once, so
            // `--jobs 2` keeps to one there (docs/jobs.md); the findings must still agree.
            #expect(two.report.connections == (TestDatabase.onCitus ? 1 : 2), "the window was not split (too few days?)")
            #expect((one.report.findings.first { $0.category == "orphan_receipt" }?.found ?? 0) > 0)
            #expect(one.report.findings.map(\.found) == two.report.findings.map(\.found))
            #expect(one.report.messagesExamined == two.report.messagesExamined)
            #expect(one.rows == two.rows)
            #expect(again.rows == one.rows)
            let bad = try runCommand(TestPaths.binary, ["jobs", "receipts", "--jobs", "3", "--database-url", url])
            #expect(bad.status == 64)
        }
    }
}

/// A command's result handed from the thread that ran it.
final class CommandBox: @unchecked Sendable {
    private var result: CommandResult?
    private var done = false
    private let cond = NSCondition()
    func set(_ r: CommandResult?) { cond.lock(); result = r; done = true; cond.broadcast(); cond.unlock() }
    func wait() throws -> CommandResult {
        cond.lock(); defer { cond.unlock() }
        while !done { cond.wait() }
        guard let result else { throw CocoaError(.executableLoad) }
        return result
    }
}

/// `promtool check metrics` (Debian's prometheus package, installed by scripts/test.sh) accepts
/// the textfile; when promtool is absent the check is recorded as skipped, not passed.
func promtoolAccepts(_ path: String) throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") else {
        print("SKIPPED: promtool check metrics (/usr/bin/promtool not installed)")
        return
    }
    let r = try runCommand("/bin/sh", ["-c", "/usr/bin/promtool check metrics < '\(path)'"])
    #expect(r.status == 0, "promtool: \(r.stdout) \(r.stderr)")
}