import ArgumentParser
import ChatStore
import ChatStoreZstd
import Foundation

extension ChatStoreCommand {
    struct ReportCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report",
            abstract: "Write the operator's report: one self-contained HTML page with inline SVG charts and the numbers behind them.",
            discussion: Examples.text("chatstore report --days 30 --out /var/www/chatstore.html", "chatstore report --json", prefix: "The queries behind it are Queries/report_*.sql. --json writes the same figures as JSON to standard output."))
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: "Days to cover, ending today (UTC).") var days: Int = 14
        @Option(name: .long, help: "The HTML file to write (atomically); - is standard output. Example: --out /var/www/chatstore.html") var out: String?

        func validate() throws {
            if !(1...3650).contains(days) { throw ValidationError("--days must be 1...3650") }
            if out == nil && !global.json { throw ValidationError("give --out FILE, or --json") }
            try checkStandardOutput(out, json: global.json)
        }

        func run() throws {
            try runReportingErrors {
                let conn = try global.connect(global.makeLogger())
                let f = try Report(logger: global.makeLogger()).figures(conn, days: days)
                if let out { try writeReport(f, to: out) }
                if global.json { try printJSON(f) } else if !global.quiet, let out { printSummary("wrote \(out) (\(f.from) to \(f.to))", output: out) }
            }
        }
    }
}

func writeReport(_ f: Report.Figures, to path: String) throws {
    let w = try AtomicFileWriter(path: path)
    try w.write(Array(Report.html(f).utf8))
    try w.commit()
}
