import ArgumentParser
import ChatStore
import ChatStoreZstd
import Foundation

extension ChatStoreCommand {
    struct CopyIn: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "copy-in",
            abstract: "Load a COPY-text file (plain or .zst) into a table in one transaction.",
            discussion: Examples.text("chatstore copy-in --table chat.users users.copy.zst", "zstd -dc users.copy.zst | chatstore copy-in --table chat.users -"))
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: "Target table (schema.table allowed).")
        var table: String
        @Option(name: .long, parsing: .upToNextOption, help: "Columns in file order (default: all, in table order).")
        var columns: [String] = []
        @Argument(help: "File in COPY text format; .zst files are decompressed on the fly; - is standard input. Example: chatstore copy-in --table chat.users users.copy.zst")
        var file: String

        func run() throws {
            try runReportingErrors {
                let logger = global.makeLogger()
                // A generic COPY tool: any table or query, so no schema version is required.
                let conn = try global.connect(logger, schema: false)
                let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? nil
                let stats = try TableTransfer.load(connection: conn, table: table, columns: columns, path: file) { read in
                    Progress.report("copy-in \(table)", done: read, total: size, unit: "bytes")
                }
                if global.json { try printJSON(stats) } else if !global.quiet {
                    print("loaded \(stats.rows) rows (\(stats.bytes) bytes) in \(String(format: "%.2f", stats.seconds)) s, \(Int(stats.rowsPerSecond)) rows/s")
                }
            }
        }
    }

    struct CopyOut: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "copy-out",
            abstract: "Write the rows of a query (COPY text format) to a zstd-compressed file, streamed.",
            discussion: Examples.text("chatstore copy-out --table chat.users --out users.copy.zst", "chatstore copy-out --query 'TABLE chat.users LIMIT 9' --no-compress --out -"))
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: "The query to export (or use --table).")
        var query: String?
        @Option(name: .long, help: "A table to export whole.")
        var table: String?
        @Option(name: .long, help: "Output file; written under a temporary name and renamed when complete; - is standard output. Example: --out - --no-compress | head")
        var out: String
        @Option(name: .long, help: "zstd level (1-19).")
        var level: Int32 = 3
        @Option(name: .long, help: "zstd worker threads (0: compress in the receiving thread). One worker overlaps compression with receiving; more rarely helps on 2 cores.")
        var workers: Int32 = 1
        @Option(name: .long, help: "zstd job size in bytes for workers (smaller: less memory).")
        var jobSize: Int32 = 1 << 20
        @Flag(name: .long, help: "Write plain COPY text, uncompressed.")
        var noCompress = false

        func validate() throws {
            if (query == nil) == (table == nil) { throw ValidationError("give exactly one of --query or --table") }
            if !(1...19).contains(level) { throw ValidationError("--level must be 1...19") }
            try checkStandardOutput(out, json: global.json)
        }

        func run() throws {
            try runReportingErrors {
                let logger = global.makeLogger()
                // A generic COPY tool: any table or query, so no schema version is required.
                let conn = try global.connect(logger, schema: false)
                let q = query ?? "SELECT * FROM \(table!.split(separator: ".").map { conn.quoteIdentifier(String($0)) }.joined(separator: "."))"
                let stats = try TableTransfer.export(connection: conn, query: q, path: out,
                                                     compression: noCompress ? nil : ZstdSettings(level: level, workers: workers, jobSize: jobSize)) { rows in
                    Progress.report("copy-out", done: Int64(rows), unit: "rows")
                }
                if global.json { try printJSON(stats) } else if !global.quiet {
                    printSummary("wrote \(stats.rows) rows, \(stats.bytes) bytes → \(stats.fileBytes) bytes in \(out) (\(String(format: "%.2f", stats.seconds)) s)", output: out)
                }
            }
        }
    }
}
