import ChatStorePostgres
import Foundation
import Logging

extension ReceiptAuditJob {
    /// Runs the audit's day chunks (`Queries/receipt_audit.sql`, each into `pg_temp.audit_found`)
    /// on the job's connection, or, given a helper and two chunks or more, the later half of them
    /// (by rows) on a second connection at the same time. The helper imports the job's snapshot,
    /// builds its share of `pg_temp.audit_scope` (the window's messages from the split on, and the
    /// job's orphan rows there, copied over), audits its chunks into its own `audit_found`, and
    /// that is copied into the job's. Its transaction only reads and is rolled back. If the
    /// helper cannot connect or fails, the job's connection audits its chunks too: the result is
    /// the same either way.
    /// - Returns: the number of connections that audited (1 or 2).
    @discardableResult
    static func auditChunks(_ chunks: [PostgresConnection.DayChunk], on c: PostgresConnection, helper connect: (@Sendable () throws -> PostgresConnection)?,
                            runner: JobRunner, window: (from: String, to: String), citus: Bool, logger: Logger) throws -> Int {
        let chunk = try QueryFile.named("receipt_audit.sql")
        @Sendable func run(_ d: PostgresConnection.DayChunk, on conn: PostgresConnection) throws {
            try conn.execute(try chunk.statement(["lo": d.lo, "hi": d.hi, "by_key": d.probeByKey && !citus ? "true" : "false"]))
        }
        let total = chunks.map(\.rows).reduce(0, +)
        var split = 0, sum = 0
        while split < chunks.count && sum + chunks[split].rows <= total / 2 { sum += chunks[split].rows; split += 1 }
        split = max(1, split)
        guard let connect, chunks.count >= 2, split < chunks.count else {
            for d in chunks { try run(d, on: c) }
            return 1
        }
        let mine = Array(chunks[..<split]), theirs = Array(chunks[split...])
        // The helper, set up from here (the orphan rows are copied from this connection).
        // (A snapshot cannot be exported from a subtransaction: first; then the steps on this
        // connection in a savepoint, so that a failure leaves the job's transaction usable.)
        let snapshot = try c.scalar(String.self, "SELECT pg_export_snapshot()")
        let h: PostgresConnection
        do {
            guard snapshot.allSatisfy({ $0.isHexDigit || $0 == "-" }) else {
                throw PostgresError(kind: .protocolViolation, message: "unexpected snapshot id \(snapshot)")
            }
            h = try connect()
            try runner.configure(h)
            try h.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            try h.execute(SQL(unsafeRaw: "SET TRANSACTION SNAPSHOT '\(snapshot)'"))
            let lo = theirs[0].lo
            try h.execute("CREATE TEMP TABLE audit_scope (conversation_id bigint, message_id bigint, sent_at timestamptz, sender_id bigint)")
            try h.execute("""
                INSERT INTO pg_temp.audit_scope
                SELECT conversation_id, message_id, sent_at, sender_id FROM chat.messages
                WHERE sent_at >= \(lo)::timestamptz AND sent_at >= \(window.from)::timestamptz AND sent_at < \(window.to)::timestamptz
                """)
            try c.transaction { c in
                // COPY takes no parameters: the split goes in through a setting of this transaction.
                try c.execute("SELECT set_config('chatstore.audit_split', \(lo), true)")
                try h.copyIn("COPY pg_temp.audit_scope FROM STDIN") { w in
                    try c.copyOut("""
                        COPY (SELECT * FROM pg_temp.audit_scope
                              WHERE sender_id IS NULL AND sent_at >= current_setting('chatstore.audit_split')::timestamptz) TO STDOUT
                        """) { try w.writeRaw($0) }
                }
            }
            try h.execute("ANALYZE pg_temp.audit_scope")
            try h.execute("CREATE TEMP TABLE audit_found (category text, conversation_id bigint, message_id bigint, recipient_id bigint, sent_at timestamptz)")
        } catch {
            logger.warning("receipts: no second connection for the audit (\((error as? PostgresError)?.summary ?? String(describing: error))); auditing every day on one")
            for d in chunks { try run(d, on: c) }
            return 1
        }
        let box = Handoff(h)
        let failure = Failure()
        let done = DispatchSemaphore(value: 0)
        let t = Thread {
            defer { done.signal() }
            do { for d in theirs { try run(d, on: box.connection) } } catch { failure.set(error) }
        }
        t.name = "chatstore-audit-helper"
        t.start()
        var mineError: Error?
        do { for d in mine { try run(d, on: c) } } catch { mineError = error }
        done.wait()
        defer { _ = try? h.execute("ROLLBACK") }
        if let mineError { throw mineError }
        if let e = failure.error {
            logger.warning("receipts: the second connection failed (\((e as? PostgresError)?.summary ?? String(describing: e))); auditing its days on this one")
            for d in theirs { try run(d, on: c) }
            return 1
        }
        try c.copyIn("COPY pg_temp.audit_found FROM STDIN") { w in
            try h.copyOut("COPY pg_temp.audit_found TO STDOUT") { try w.writeRaw($0) }
        }
        return 2
    }

    /// A connection handed to one other thread, which alone uses it until it signals.
    final class Handoff: @unchecked Sendable {
        let connection: PostgresConnection
        init(_ c: PostgresConnection) { connection = c }
    }

    /// The helper's error, read after it signalled.
    final class Failure: @unchecked Sendable {
        private var stored: Error?
        private let lock = NSLock()
        var error: Error? { lock.withLock { stored } }
        func set(_ e: Error) { lock.withLock { stored = e } }
    }
}
