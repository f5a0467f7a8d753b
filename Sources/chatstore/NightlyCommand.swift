import ArgumentParser
import ChatStore
import ChatStoreZstd
import Foundation

extension ChatStoreCommand {
    struct NightlyRun: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "nightly",
            abstract: "Partition upkeep, reconcile, receipt audit, unread counts, last-seen and (when configured) retention, in that order, then a summary.",
            discussion: Examples.text("chatstore nightly", "chatstore nightly --quiet --jobs 2 --metrics-file m.prom", "chatstore nightly --quiet --archive-dir /srv/archive", "chatstore nightly --json --report /var/www/chatstore.html", prefix: "Exit 0 when all jobs succeeded and found nothing; 2 when anomalies were found; 4 when partition coverage is low or rows sit in a default partition; 1 when a job failed; 3 when another nightly run is in progress. Quiet with --quiet (for cron), JSON with --json."))
        @OptionGroup var global: GlobalOptions
        @OptionGroup var job: JobOptions
        @Flag(name: .long, help: "Repair the fixable receipt anomalies (recorded in chat.receipt_repairs).") var repairReceipts = false
        @Option(name: .long, help: ArgumentHelp("Run as of this time instead of now (replaying history in tests and benchmarks).", visibility: .hidden)) var now: String?
        @Option(name: .long, help: "Archive directory for retention: when chat.partition_config has a retention for messages, partitions older than it are archived, verified and dropped.") var archiveDir: String?
        @Option(name: .long, help: "After the run, write the operator's HTML report (14 days) to this file.") var report: String?
        @Option(name: .long, help: "Write the summary in Prometheus text format to this file (atomically), for node_exporter's textfile collector.") var metricsFile: String?
        @Option(name: .long, help: "Run up to N of reconcile, the receipt audit, unread and last-seen at once, each on its own connection (default 1: one after another). Each statement uses one server core, so on a server with a spare core --jobs 2 shortens a long night; with --repair-receipts the other jobs wait for the repairs. Example: --jobs 2") var jobs = 1

        func validate() throws {
            guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1 (got \(jobs))") }
        }

        /// Whether this run wrote its metrics file (a class: `run()` is not mutating).
        final class Wrote: @unchecked Sendable { var metrics = false }

        func run() throws {
            let started = Date()
            let wrote = Wrote()
            do {
                try runNightly(wrote)
            } catch {
                // A run that could not connect (or failed before its jobs) still says so to
                // Prometheus: chatstore_up 0, atomically, instead of leaving yesterday's file. A
                // run refused because another holds the lock (exit 3) leaves the file to it.
                if let metricsFile, !wrote.metrics, (error as? ExitCode)?.rawValue != ExitCodes.busy {
                    if let w = try? AtomicFileWriter(path: metricsFile) {
                        let previous = try? String(contentsOfFile: metricsFile, encoding: .utf8)
                        try? w.write(Array(Nightly.prometheusDown(at: started, previous: previous).utf8))
                        try? w.commit()
                    }
                }
                throw error
            }
        }

        func runNightly(_ wrote: Wrote) throws {
            try runJobCommand {
                let logger = global.makeLogger()
                let conn = try global.connect(logger)
                var n = Nightly(logger: logger)
                n.runner = job.runner(global)
                n.repairReceipts = repairReceipts
                n.now = try parseDate(now, "--now")
                n.archiveDirectory = archiveDir
                n.parallelJobs = jobs
                n.connectionSettings = global.connectionSettings()
                let s = try n.run(conn)
                if let metricsFile {
                    let w = try AtomicFileWriter(path: metricsFile)
                    try w.write(Array(Nightly.prometheus(s).utf8))
                    try w.commit()
                    wrote.metrics = true
                }
                if let report { try writeReport(try Report(logger: logger).figures(conn, days: 14), to: report) }
                if global.json { try printJSON(s) } else if !global.quiet {
                    print("nightly run: \(String(format: "%.2f", s.seconds)) s")
                    for j in s.jobs {
                        print("  \(j.job.padding(toLength: 11, withPad: " ", startingAt: 0)) \(j.status.padding(toLength: 9, withPad: " ", startingAt: 0)) \(String(format: "%7.2f", j.seconds)) s  examined \(j.examined), changed \(j.changed)\(j.anomalies.isEmpty ? "" : ", anomalies: " + j.anomalies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
                        if let e = j.error { print("    error: \(e)") }
                    }
                    print("  unread total \(s.unreadTotal.map(String.init) ?? "unknown (the unread job failed)"); dead letters: expired \(s.deadLetters["expired"] ?? 0), poison \(s.deadLetters["poison"] ?? 0); partitions ahead: \(s.partitionsAhead.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
                }
                for w in s.partitionWarnings { printError(w) }
                if s.failed { throw ExitCode(ExitCodes.failure) }
                if !s.partitionWarnings.isEmpty { throw ExitCode(ExitCodes.coverageLow) }
                if s.anomalies > 0 { throw ExitCode(ExitCodes.anomalies) }
            }
        }
    }
}
