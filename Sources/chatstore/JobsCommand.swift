import ArgumentParser
import ChatStore
import ChatStorePostgres
import Foundation

extension ChatStoreCommand {
    struct Jobs: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "jobs",
            abstract: "Run one nightly batch job (their SQL is in Queries/).",
            discussion: Examples.text("chatstore jobs unread", "chatstore jobs receipts --json", prefix: "Each job takes its own advisory lock (a concurrent second run exits 3 at once), records its run in chat.job_runs, and commits its work together with the ledger row."),
            subcommands: [Unread.self, Receipts.self, LastSeen.self, Reconcile.self, Redrive.self]
        )
    }
}

struct JobOptions: ParsableArguments {
    @Option(name: .long, help: "lock_timeout for the job's statements (500ms, 5s, 1m; a bare number is seconds). Example: --lock-timeout 2s")
    var lockTimeout = DurationArgument(seconds: 5)
    @Option(name: .long, help: ArgumentHelp("lock_timeout in milliseconds (old spelling of --lock-timeout).", visibility: .hidden))
    var lockTimeoutMs: Int?
    @Option(name: .long, help: "statement_timeout for each statement (30s, 10m, 2h; a bare number is seconds). Example: --statement-timeout 30m")
    var statementTimeout = DurationArgument(seconds: 3600)
    @Option(name: .long, help: "How long to wait for the job's lock while another run holds it, then exit 3 naming the holder (a run killed a moment ago lets go within a second or two; a bare number is seconds). Example: --lock-wait 1m")
    var lockWait = DurationArgument(seconds: 15)

    func runner(_ global: GlobalOptions) -> JobRunner {
        var r = JobRunner(logger: global.makeLogger())
        r.lockTimeout = lockTimeoutMs.map { .milliseconds($0) } ?? lockTimeout.duration
        r.statementTimeout = statementTimeout.duration
        r.lockWait = lockWait.duration
        return r
    }
}

/// Maps a busy job to exit 3.
func runJobCommand(_ body: () throws -> Void) throws {
    try runReportingErrors {
        do { try body() } catch let e as JobBusy {
            printError(e.description)
            throw ExitCode(ExitCodes.busy)
        }
    }
}

func parseDate(_ s: String?, _ flag: String) throws -> Date? {
    guard let s else { return nil }
    guard let d = PostgresTimestamp.parse(s) else { throw ValidationError("\(flag) must be YYYY-MM-DD or an ISO timestamp, got \(s)") }
    return d
}

extension ChatStoreCommand.Jobs {
    struct Unread: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Maintain chat.unread_counts: incremental from the last watermark; --full, --verify (exit 2 on drift), --repair.",
            discussion: Examples.text("chatstore jobs unread", "chatstore jobs unread --verify --json", "chatstore jobs unread --repair"))
        @OptionGroup var global: GlobalOptions
        @OptionGroup var job: JobOptions
        @Flag(name: .long, help: "Recompute every row from scratch.") var full = false
        @Flag(name: .long, help: "Compare stored counts with a full recompute and report drift; change nothing.") var verify = false
        @Flag(name: .long, help: "Like --verify, then fix the drifted rows.") var repair = false

        func validate() throws {
            if [full, verify, repair].filter({ $0 }).count > 1 { throw ValidationError("choose one of --full, --verify, --repair") }
        }

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                let j = UnreadJob(mode: full ? .full : verify ? .verify : repair ? .repair : .incremental)
                let r = try j.run(conn, runner: job.runner(global))
                if global.json { try printJSON(r) } else if !global.quiet {
                    print("unread (\(r.mode.rawValue)): \(r.rowsChanged) rows changed, \(r.pairsRecomputed) pairs recomputed, \(r.totalUnread) unread in \(r.pairsWithUnread) conversations-members, \(String(format: "%.2f", r.seconds)) s")
                    if r.mode == .verify || r.mode == .repair {
                        print("drift: \(r.driftCount) rows\(r.mode == .repair && r.driftCount > 0 ? " (repaired)" : "")")
                        for d in r.drift.prefix(20) { print("  conversation \(d.conversationId) user \(d.userId): stored \(d.stored.map(String.init) ?? "none"), expected \(d.expected.map(String.init) ?? "none")") }
                    }
                }
                if r.mode == .verify && r.driftCount > 0 { throw ExitCode(ExitCodes.anomalies) }
            }
        }
    }

    struct Receipts: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Audit receipts category by category (exit 2 when anything is found); --repair fixes the safe categories and records each change.",
            discussion: Examples.text("chatstore jobs receipts --json", "chatstore jobs receipts --repair", "chatstore jobs receipts --from 2026-11-01 --to 2026-12-01 --jobs 2"))
        @OptionGroup var global: GlobalOptions
        @OptionGroup var job: JobOptions
        @Flag(name: .long, help: "Fix the fixable categories in one transaction, recording every change in chat.receipt_repairs.") var repair = false
        @Option(name: .long, help: "Audit the messages sent from this date (default: every message touched by a row written since the last run, in commit order; all on the first run). A run with --from/--to leaves the nightly's starting point alone. Example: --from 2026-11-01") var from: String?
        @Option(name: .long, help: "... until this date (default with --from: now). Example: --to 2026-12-01") var to: String?
        @Option(name: .long, help: "Audit a first run or a --from/--to window on up to 2 connections at once, the later half of its days on the second (it reads the same snapshot); 1 (the default) audits on one. Example: --jobs 2") var jobs = 1

        func validate() throws {
            guard (1...2).contains(jobs) else { throw ValidationError("--jobs must be 1 or 2 (got \(jobs))") }
        }

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                var j = ReceiptAuditJob(repair: repair)
                j.from = try parseDate(from, "--from")
                j.to = try parseDate(to, "--to")
                if jobs > 1 {
                    let settings = global.connectionSettings(), logger = global.makeLogger()
                    j.helper = { try PostgresConnection(settings: settings, logger: logger) }
                }
                let r = try j.run(conn, runner: job.runner(global))
                if global.json { try printJSON(r) } else if !global.quiet {
                    print("receipt audit (\(r.scope)): \(r.messagesExamined) messages examined, \(r.anomalies) anomalies found, \(r.open) open\(repair ? ", \(r.repaired) rows repaired (run \(r.runID))" : "")")
                    for f in r.findings where f.found > 0 || f.open > 0 || f.repaired > 0 {
                        print("  \(f.category.padding(toLength: 24, withPad: " ", startingAt: 0)) found \(f.found), open \(f.open)\(repair ? ", repaired \(f.repaired)" : "")\(f.samples.isEmpty ? "" : "  e.g. " + f.samples.prefix(3).joined(separator: " "))")
                    }
                }
                if r.anomalies > 0 && !repair { throw ExitCode(ExitCodes.anomalies) }
            }
        }
    }
}
