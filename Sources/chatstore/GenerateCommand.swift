import ArgumentParser
import ChatStore
import ChatStorePostgres
import Foundation
import ChatStoreZstd

extension ChatStoreCommand {
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a synthetic messaging workload, deterministically for a seed, with planted receipt anomalies.",
            discussion: Examples.text("chatstore generate --users 1000 --days 7", "chatstore generate --users 10000 --days 30 --seed 42 --answer-key key.json", prefix: "Distributions and parameters: docs/generator.md. The database must be migrated. Load into an empty database: ids start at 1."))
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: "Number of users.")
        var users: Int
        @Option(name: .long, help: "Number of days of traffic.")
        var days: Int
        @Option(name: .long, help: "Random seed: the same seed gives the same rows.")
        var seed: UInt64 = 1
        @Option(name: .long, help: "First day, YYYY-MM-DD (UTC). Default: DAYS days before today.")
        var start: String?
        @Option(name: .long, help: "Mean messages per user per day.")
        var messagesPerUserDay: Double = 8
        @Option(name: .long, help: "Probability that a receipt carries one planted anomaly.")
        var anomalyRate: Double = 0.002
        @Option(name: .long, help: "Write the answer key (planted anomalies, expected unread totals) to this JSON file; - is standard output. Example: --answer-key key.json")
        var answerKey: String?

        func validate() throws {
            if users < 2 { throw ValidationError("--users must be at least 2") }
            if !(1...3650).contains(days) { throw ValidationError("--days must be 1...3650") }
            if let start, PostgresTimestamp.parse(start) == nil { throw ValidationError("--start must be YYYY-MM-DD, got \(start)") }
            if !(0...0.5).contains(anomalyRate) { throw ValidationError("--anomaly-rate must be 0...0.5") }
            try checkStandardOutput(answerKey, json: global.json, flag: "--answer-key")
            if messagesPerUserDay <= 0 || messagesPerUserDay > 10_000 { throw ValidationError("--messages-per-user-day must be in (0, 10000]") }
        }

        func run() throws {
            try runReportingErrors {
                let logger = global.makeLogger()
                var cfg = WorkloadConfig(users: users, days: days, seed: seed, start: start.flatMap { PostgresTimestamp.parse($0) })
                cfg.messagesPerUserDay = messagesPerUserDay
                cfg.anomalyRate = anomalyRate
                let settings = global.connectionSettings()
                // The schema must be there, and the database empty of users: the generator's ids
                // start at 1 and would collide with what is stored.
                let conn = try global.connect(logger)
                if try conn.scalar(Bool.self, "SELECT EXISTS (SELECT 1 FROM chat.users)") {
                    printError("the database already holds users: generate loads into an empty, migrated database (create a fresh one, then `chatstore migrate`)")
                    throw ExitCode(ExitCodes.failure)
                }
                // Progress (per day, its commit, analyze) is reported by the generator itself.
                let report = try WorkloadGenerator(config: cfg, logger: logger).load(settings: settings)
                if let answerKey {
                    let enc = JSONEncoder()
                    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                    let w = try AtomicFileWriter(path: answerKey)   // `-`: standard output
                    try w.write(Array(try enc.encode(report.answerKey)))
                    try w.commit()
                }
                if global.json { try printJSON(report) } else if !global.quiet {
                    let k = report.answerKey
                    printSummary("loaded \(k.users) users, \(k.conversations) conversations, \(k.messages) messages, \(k.receipts) receipts, \(k.presenceEvents) presence events: \(report.rows) rows in \(String(format: "%.1f", report.seconds)) s (\(Int(report.rowsPerSecond)) rows/s)", output: answerKey)
                    printSummary("planted anomalies: " + k.anomalies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "), output: answerKey)
                }
            }
        }
    }
}
