import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct KillTests {
    /// The state the nightly jobs produce, independent of when they ran.
    func outcome(_ conn: PostgresConnection) throws -> [String] {
        [
            try TestDatabase.checksum(conn, "(SELECT conversation_id, user_id, unread, last_message_at FROM chat.unread_counts)", orderBy: "conversation_id, user_id")
                .appending(":\(try conn.scalar(Int.self, "SELECT count(*) FROM chat.unread_counts"))"),
            try TestDatabase.checksum(conn, "(SELECT conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at FROM chat.receipts)",
                                      orderBy: "conversation_id, message_id, recipient_id, sent_at"),
            try TestDatabase.checksum(conn, "chat.daily_activity", orderBy: "user_id, day"),
            try TestDatabase.checksum(conn, "(SELECT conversation_id, message_id, recipient_id, category, action FROM chat.receipt_repairs)",
                                      orderBy: "conversation_id, message_id, recipient_id, category"),
            String(try conn.scalar(Int.self, "SELECT count(*) FROM chat.delivery_attempts")),
        ]
    }

    @Test func nightlyKilledAtAnyInstantThenRerunEqualsAnUninterruptedRun() throws {
        // Reference: one uninterrupted run.
        let reference = try TestDatabase.migrated { conn, settings -> [String] in
            try TestDatabase.generate(settings, users: 700, days: 4, seed: 11)
            let r = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--repair-receipts", "--database-url", settings.conninfo])
            #expect(r.status == 2 || r.status == 0, "\(r.stderr)")
            return try outcome(conn)
        }
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 700, days: 4, seed: 11)
            var killedMidRun = 0
            for delay in [0.05, 0.15, 0.3, 0.45, 0.6, 0.8, 1.0] {
                let pid = try spawnCommand(TestPaths.binary, ["nightly", "--quiet", "--repair-receipts", "--database-url", settings.conninfo])
                Thread.sleep(forTimeInterval: delay)
                kill(pid, SIGKILL)
                if waitCommand(pid) == 128 + SIGKILL { killedMidRun += 1 }
                // The server notices the dead client; wait until its backend and locks are gone.
                for _ in 0..<50 {
                    let busy = try conn.scalar(Int.self, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'chatstore'")
                    if busy == 0 { break }
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
            #expect(killedMidRun >= 3)
            let r = try runCommand(TestPaths.binary, ["nightly", "--quiet", "--repair-receipts", "--database-url", settings.conninfo])
            #expect(r.status == 0 || r.status == 2, "\(r.stderr)")
            let got = try outcome(conn)
            for (i, (a, b)) in zip(got, reference).enumerated() { #expect(a == b, "outcome part \(i)") }
            // Interrupted runs are marked failed in the ledger, none left 'running'.
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.job_runs WHERE status = 'running'") == 0)
            let verify = try runCommand(TestPaths.binary, ["jobs", "unread", "--verify", "--database-url", settings.conninfo])
            #expect(verify.status == 0, "\(verify.stdout)")
        }
    }
}
