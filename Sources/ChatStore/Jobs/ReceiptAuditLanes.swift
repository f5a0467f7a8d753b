import ChatStorePostgres
import Foundation
import Logging

extension ReceiptAuditJob {
    /// Runs the audit's day chunks (`Queries/receipt_audit.sql`, each into `pg_temp.audit_found`)
    /// on the job's connection, or, given a helper and two chunks or more, the later half of them
    /// (by rows) on a second connection at the same time. A helper is only given for a window
    /// (`windowed`: each chunk reads its messages from `chat.messages`, so the helper needs no
    /// scope of its own): it imports the job's snapshot, audits its chunks into its own
    /// `audit_found`, and that is copied into the job's. Its transaction only reads and is
    /// rolled back. If the helper cannot connect or fails, the job's connection audits its
    /// chunks too: the result is the same either way.
    /// - Returns: the number of connections that audited (1 or 2).
    @discardableResult
    static func auditChunks(_ chunks: [PostgresConnection.DayChunk], on c: PostgresConnection, helper connect: (@Sendable () throws -> PostgresConnection)?,
                            runner: JobRunner, windowed: Bool, citus: Bool, logger: Logger) throws -> Int {
        let chunk = try QueryFile.named("receipt_audit.sql")
        @Sendable func run(_ d: PostgresConnection.DayChunk, on conn: PostgresConnection) throws {
            // A window's chunk is a whole day of messages (or a stretch with none, for its
            // orphans): hashed, never probed by key (the probe starts from the scope's rows).
            let byKey = d.probeByKey && !citus && !windowed
            try conn.execute(try chunk.statement(["lo": d.lo, "hi": d.hi, "by_key": byKey ? "true" : "false",
                                                  "windowed": windowed ? "true" : "false"]))
        }
        let total = chunks.map(\.rows).reduce(0, +)
        var split = 0, sum = 0
        while split < chunks.count && sum + chunks[split].rows <= total / 2 { sum += chunks[split].rows; split += 1 }
        split = max(1, split)
        guard let connect, windowed, chunks.count >= 2, split < chunks.count else {
            for d in chunks { try run(d, on: c) }
            return 1
        }
        let mine = Array(chunks[..<split]), theirs = Array(chunks[split...])
        // The helper, set up from here. (A snapshot cannot be exported from a subtransaction.)
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
            try h.execute("CREATE TEMP TABLE audit_scope (conversation_id bigint, message_id bigint, sent_at timestamptz, sender_id bigint)")
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
