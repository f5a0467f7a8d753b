import ArgumentParser
import ChatStore
import Foundation

extension ChatStoreCommand {
    struct Ingest: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load NDJSON event streams (plain or .zst) idempotently; bad lines go to the reject file.",
            discussion: Examples.text("chatstore ingest events-2026-11-30.ndjson.zst --reject-file rejects.tsv", "producer | chatstore ingest - --strict", prefix: "Event format: docs/events.md. Exit 0 when every line loaded, 2 when some lines were rejected (the rest loaded), 1 on failure; with --strict the first bad line aborts with nothing committed (exit 1)."))
        @OptionGroup var global: GlobalOptions
        @Argument(help: "NDJSON files, one event per line; .zst files are decompressed on the fly; - is standard input (plain NDJSON). Example: chatstore ingest day1.ndjson.zst day2.ndjson.zst") var files: [String]
        @Option(name: .long, help: "Write each rejected line here, in file order, as file:line<TAB>reason<TAB>line; - is standard output. Example: --reject-file rejects.tsv") var rejectFile: String?
        @Flag(name: .long, help: "Abort at the first bad line; commit nothing.") var strict = false
        @Option(name: .long, help: "Lines per committed batch.") var batchSize: Int = 10_000
        @Option(name: .long, help: "Connections applying each batch in parallel; a conversation's events always go to the same one (--strict uses one).") var workers: Int = 2

        func validate() throws {
            if files.isEmpty { throw ValidationError("give at least one file") }
            if batchSize < 1 { throw ValidationError("--batch-size must be positive") }
            if workers < 1 || workers > 16 { throw ValidationError("--workers must be between 1 and 16") }
            for f in files where f != "-" && !FileManager.default.isReadableFile(atPath: f) { throw ValidationError("cannot read \(f)") }
            if files.filter({ $0 == "-" }).count > 1 { throw ValidationError("- (standard input) can be given once") }
            try checkStandardOutput(rejectFile, json: global.json, flag: "--reject-file")
        }

        func run() throws {
            try runReportingErrors {
                let logger = global.makeLogger()
                let conn = try global.connect(logger)
                var o = EventIngester.Options()
                o.strict = strict; o.batchSize = batchSize; o.rejectPath = rejectFile; o.workers = workers
                let r = try EventIngester(connection: conn, options: o, logger: logger, settings: global.connectionSettings()).ingest(paths: files) { n in
                    Progress.report("ingest", done: Int64(n), unit: "lines")
                }
                if global.json { try printJSON(r) } else if !global.quiet {
                    printSummary("ingested \(r.lines) lines: \(r.accepted) accepted, \(r.rejected) rejected in \(String(format: "%.2f", r.seconds)) s (\(Int(r.linesPerSecond)) lines/s)", output: rejectFile)
                    for (reason, n) in r.rejectReasons.sorted(by: { $0.value > $1.value }) { printSummary("  rejected \(n): \(reason)", output: rejectFile) }
                    if r.stepsUpserted > 0 {
                        printSummary("  \(r.stepsUpserted) batch steps met rows already stored (a re-run or repeated events) and were upserted", output: rejectFile)
                    }
                }
                if r.rejected > 0 {
                    if global.quiet { for line in r.firstRejects.prefix(5) { printError(line) } }
                    throw ExitCode(ExitCodes.anomalies)
                }
            }
        }
    }
}
