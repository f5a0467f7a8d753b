import ArgumentParser
import ChatStore
import ChatStorePostgres
import Foundation

extension ChatStoreCommand.Jobs {
    struct LastSeen: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "last-seen",
            abstract: "Roll presence and activity into last-seen times, daily activity and the daily summary; drop raw presence past its retention. Idempotent per day.",
            discussion: Examples.text("chatstore jobs last-seen", "chatstore jobs last-seen --from 2026-11-01 --to 2026-11-08"))
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
            abstract: "Schedule redelivery of undelivered messages with exponential backoff; dead-letter expired and poison ones.",
            discussion: Examples.text("chatstore jobs reconcile --dry-run --json", "chatstore jobs reconcile --grace 10m --max-age 2w"))
        @OptionGroup var global: GlobalOptions
        @OptionGroup var job: JobOptions
        @Flag(name: .long, help: "Classify and report; change nothing.") var dryRun = false
        @Option(name: .long, help: "How long a message stays undelivered before it needs reconciling (a bare number is seconds). Example: --grace 10m") var grace = DurationArgument(seconds: 600)
        @Option(name: .long, help: ArgumentHelp("Old spelling of --grace, in seconds.", visibility: .hidden)) var graceSeconds: Double?
        @Option(name: .long, help: "Age after which an undelivered message expires (dead letter 'expired'). Example: --max-age 14d") var maxAge = DurationArgument(seconds: 14 * 86_400)
        @Option(name: .long, help: ArgumentHelp("Old spelling of --max-age, in days.", visibility: .hidden)) var maxAgeDays: Double?
        @Option(name: .long, help: "Failed attempts after which a delivery is poison. Example: --max-attempts 8") var maxAttempts: Int = 8
        @Option(name: .long, help: "Backoff base: attempt n is scheduled base × n⁴ after now. Example: --backoff-base 30s") var backoffBase = DurationArgument(seconds: 30)
        @Option(name: .long, help: ArgumentHelp("Old spelling of --backoff-base, in seconds.", visibility: .hidden)) var baseSeconds: Double?

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                var j = ReconcileJob()
                j.dryRun = dryRun; j.grace = graceSeconds ?? grace.seconds; j.maxAge = maxAgeDays.map { $0 * 86_400 } ?? maxAge.seconds
                j.maxAttempts = maxAttempts; j.baseSeconds = baseSeconds ?? backoffBase.seconds
                let r = try j.run(conn, runner: job.runner(global))
                if global.json { try printJSON(r) } else if !global.quiet {
                    print("reconcile\(dryRun ? " (dry run)" : ""): \(r.undelivered) undelivered: \(r.scheduled) retries scheduled, \(r.waiting) waiting on a pending attempt, \(r.expired) expired, \(r.poison) poison → dead letters")
                }
            }
        }
    }

    struct Redrive: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move dead letters back to delivery, oldest first, at most --limit per run.",
            discussion: Examples.text("chatstore jobs redrive --dry-run", "chatstore jobs redrive --limit 500"))
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
