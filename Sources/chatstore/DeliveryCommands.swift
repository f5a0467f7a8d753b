import ArgumentParser
import ChatStore
import ChatStorePostgres
import Foundation

extension ChatStoreCommand.Jobs {
    struct LastSeen: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "last-seen",
            abstract: "Roll presence and activity into last-seen times, daily activity and the daily summary; drop raw presence past its retention. Idempotent per day.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var job: JobOptions
        @Option(name: .long, help: "First day (YYYY-MM-DD; default: the day before the last run).") var from: String?
        @Option(name: .long, help: "Day after the last day (default: tomorrow).") var to: String?

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                var j = LastSeenJob()
                j.from = try parseDate(from, "--from")
                j.to = try parseDate(to, "--to")
                let r = try j.run(conn, runner: job.runner(global), partitions: PartitionManager(logger: global.makeLogger()))
                if global.json { try printJSON(r) } else if !global.quiet {
                    print("last-seen: \(r.days) days recomputed\(r.days > 0 ? " (\(r.from) to \(r.to))" : ""), \(r.activityRows) daily activity rows, \(r.lastSeenUpdated) last-seen times updated, \(r.presencePartitionsDropped.count) presence partitions dropped")
                }
            }
        }
    }

    struct Reconcile: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Schedule redelivery of undelivered messages with exponential backoff; dead-letter expired and poison ones.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var job: JobOptions
        @Flag(name: .long, help: "Classify and report; change nothing.") var dryRun = false
        @Option(name: .long, help: "Seconds undelivered before a message needs reconciling.") var graceSeconds: Double = 600
        @Option(name: .long, help: "Days after which an undelivered message expires.") var maxAgeDays: Double = 14
        @Option(name: .long, help: "Failed attempts after which a delivery is poison.") var maxAttempts: Int = 8
        @Option(name: .long, help: "Backoff base in seconds (attempt n waits base × n⁴).") var baseSeconds: Double = 30

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                var j = ReconcileJob()
                j.dryRun = dryRun; j.grace = graceSeconds; j.maxAge = maxAgeDays * 86_400; j.maxAttempts = maxAttempts; j.baseSeconds = baseSeconds
                let r = try j.run(conn, runner: job.runner(global))
                if global.json { try printJSON(r) } else if !global.quiet {
                    print("reconcile\(dryRun ? " (dry run)" : ""): \(r.undelivered) undelivered: \(r.scheduled) retries scheduled, \(r.waiting) waiting on a pending attempt, \(r.expired) expired, \(r.poison) poison → dead letters")
                }
            }
        }
    }

    struct Redrive: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move dead letters back to delivery, oldest first, at most --limit per run.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var job: JobOptions
        @Flag(name: .long, help: "Show what would be redriven; change nothing.") var dryRun = false
        @Option(name: .long, help: "At most this many dead letters (the rate limit per run).") var limit: Int = 1000
        @Option(name: .long, help: "Only dead letters with this reason: expired or poison.") var reason: String?

        func validate() throws {
            if limit < 1 { throw ValidationError("--limit must be at least 1") }
            if let reason, !["expired", "poison"].contains(reason) { throw ValidationError("--reason must be expired or poison") }
        }

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                var j = RedriveJob()
                j.dryRun = dryRun; j.limit = limit; j.reason = reason
                let r = try j.run(conn, runner: job.runner(global))
                if global.json { try printJSON(r) } else if !global.quiet {
                    print("redrive\(dryRun ? " (dry run)" : ""): \(r.redriven) dead letters \(dryRun ? "would be " : "")redriven \(r.byReason.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")); \(r.remaining) remain")
                }
            }
        }
    }
}
