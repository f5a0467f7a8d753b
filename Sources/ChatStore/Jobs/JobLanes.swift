import ChatStorePostgres
import Foundation
import Logging

/// Runs a list of jobs on up to `lanes` connections at once: the caller's connection and, for
/// each further lane, one of its own. A job starts once the jobs it comes `after` have ended
/// (succeeded or not); among the jobs that may start, the first in the list goes first. With one
/// lane (or when a further connection cannot be opened) the jobs run one after another on the
/// caller's connection, in list order.
///
/// The nightly's jobs read the same tables and each writes its own (reconcile the attempts, the
/// audit its anomalies, unread its counts, last-seen its rollups), and each commits in its own
/// transaction under its own advisory lock, so two of them at once are as safe as two runs
/// started by hand: each statement is single-threaded on the server, so a second lane uses the
/// second core.
struct JobLanes: Sendable {
    /// One job: its name, the jobs it must wait for, and its body on a connection.
    struct Job: Sendable {
        var name: String
        var after: Set<String> = []
        var body: @Sendable (PostgresConnection) -> Void
    }

    var lanes: Int
    /// Opens a further lane's connection (nil: one lane).
    var connect: (@Sendable () throws -> PostgresConnection)?
    var logger: Logger

    /// Runs every job; returns when all have ended.
    func run(_ jobs: [Job], on conn: PostgresConnection) {
        let queue = Queue(jobs)
        let extra = connect == nil ? 0 : max(0, min(lanes, jobs.count) - 1)
        var threads: [DispatchSemaphore] = []
        for i in 0..<extra {
            let done = DispatchSemaphore(value: 0)
            threads.append(done)
            let connect = connect!, logger = logger
            let t = Thread {
                defer { done.signal() }
                let c: PostgresConnection
                do { c = try connect() } catch {
                    logger.warning("nightly: could not open the connection of lane \(i + 2) (\((error as? PostgresError)?.summary ?? String(describing: error))); its jobs run on the others")
                    return
                }
                queue.work(on: c)
            }
            t.name = "chatstore-lane-\(i + 2)"
            t.start()
        }
        queue.work(on: conn)
        for t in threads { t.wait() }
    }

    /// The jobs not yet started and the names of those that ended, under one lock.
    final class Queue: @unchecked Sendable {
        private var pending: [Job]
        private var ended: Set<String> = []
        private let cond = NSCondition()

        init(_ jobs: [Job]) {
            // Waiting for a job that is not in the list would wait forever.
            let names = Set(jobs.map(\.name))
            pending = jobs.map { var j = $0; j.after.formIntersection(names); return j }
        }

        /// Takes jobs until none is left; waits while the remaining ones wait for running ones.
        func work(on conn: PostgresConnection) {
            while let job = next() {
                job.body(conn)
                cond.lock(); ended.insert(job.name); cond.broadcast(); cond.unlock()
            }
        }

        private func next() -> Job? {
            cond.lock(); defer { cond.unlock() }
            while true {
                if pending.isEmpty { return nil }
                if let i = pending.firstIndex(where: { $0.after.isSubset(of: ended) }) { return pending.remove(at: i) }
                cond.wait()
            }
        }
    }
}
