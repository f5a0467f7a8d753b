import ArgumentParser
import ChatStore
import ChatStorePostgres
import Foundation

extension ChatStoreCommand {
    struct Archive: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "zstd-compressed archives of message partitions: export, verify, restore, list.",
            discussion: Examples.text("chatstore archive export --before 2026-09-01 --archive-dir /srv/archive", "chatstore archive verify /srv/archive", prefix: "Format: docs/archive-format.md. Archives are readable without chatstore: zstd -t, zstd -dc FILE | jq."),
            subcommands: [Export.self, Verify.self, Restore.self, List.self])
    }

    struct ComplianceExportCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Export everything one user sent or could read, or one conversation, into one zstd-compressed NDJSON file (live partitions and archives).",
            discussion: Examples.text("chatstore export --user 42 --out user42.ndjson.zst", "chatstore export --conversation 7 --from 2026-01-01 --out - | zstd -dc | jq"))
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: "The user whose data to export.") var user: Int64?
        @Option(name: .long, help: "The conversation to export.") var conversation: Int64?
        @Option(name: .long, help: "Only messages sent from this time (YYYY-MM-DD or ISO).") var from: String?
        @Option(name: .long, help: "Only messages sent before this time.") var to: String?
        @Option(name: .long, help: "Output file (.ndjson.zst); written under a temporary name and renamed when complete; - writes the zstd stream to standard output. Example: --out - | zstd -dc | jq .") var out: String

        func validate() throws {
            if (user == nil) == (conversation == nil) { throw ValidationError("give exactly one of --user or --conversation") }
            try checkStandardOutput(out, json: global.json)
        }

        func run() throws {
            try runReportingErrors {
                let conn = try global.connect(global.makeLogger())
                let r = try ChatStore.ComplianceExport(logger: global.makeLogger()).run(conn, subject: user.map { .user($0) } ?? .conversation(conversation!),
                                                                                       from: try parseDate(from, "--from"), to: try parseDate(to, "--to"), out: out)
                if global.json { try printJSON(r) } else if !global.quiet {
                    printSummary("wrote \(r.path): \(r.conversations) conversations, \(r.messages) messages (\(r.fromArchives) rows from archives), \(r.receipts) receipts, \(r.media) media; sha256 \(r.sha256)", output: out)
                }
            }
        }
    }
}

extension ChatStoreCommand.Archive {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Archive message partitions (with their receipts and media) into DIR/<partition>/, verify them, and record them in chat.archives. The database is not changed otherwise.",
            discussion: Examples.text("chatstore archive export --partition messages_p20261122 --archive-dir /srv/a", "chatstore archive export --before 2026-09-01 --archive-dir /srv/a --json"))
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: "A messages partition (e.g. messages_p20261122).") var partition: String?
        @Option(name: .long, help: "Every messages partition that ends on or before this date.") var before: String?
        @Option(name: .long, help: ArgumentHelp("Where archives go (the same flag as retire's and nightly's). Example: --archive-dir /srv/archive", valueName: "dir")) var archiveDir: String?
        @Option(name: .long, help: ArgumentHelp("Old spelling of --archive-dir.", visibility: .hidden)) var dir: String?
        @Flag(name: .long, help: "Skip verification and the ledger (for benchmarks; `archive verify` can check later).") var noVerify = false

        func validate() throws {
            if (partition == nil) == (before == nil) { throw ValidationError("give exactly one of --partition or --before") }
            if archiveDir == nil && dir == nil { throw ValidationError("give --archive-dir, the directory archives go to") }
        }

        func run() throws {
            try runReportingErrors {
                let conn = try global.connect(global.makeLogger())
                let dir = (archiveDir ?? dir)!
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                var names: [String] = []
                if let partition { names = [partition] } else {
                    let cutoff = try parseDate(before, "--before")!
                    names = try PartitionManager(logger: global.makeLogger()).partitions(conn, parent: "messages").filter { $0.to <= cutoff }.map(\.name)
                    if names.isEmpty { printError("no messages partition ends on or before \(before!): nothing archived") }
                }
                struct Out: Encodable { var partition: String; var archiveId: Int64; var path: String; var rows: [String: Int] }
                var out: [Out] = []
                for n in names {
                    if noVerify {
                        let (m, path) = try ArchiveExporter(logger: global.makeLogger()).export(conn, partition: n, into: dir)
                        out.append(Out(partition: n, archiveId: 0, path: path, rows: Dictionary(uniqueKeysWithValues: m.files.map { ($0.content, $0.rows) })))
                        if !global.json && !global.quiet { print("archived \(n) → \(path) (not verified)") }
                        continue
                    }
                    let (id, path, report) = try Retirement(logger: global.makeLogger()).archive(conn, partition: n, directory: dir)
                    out.append(Out(partition: n, archiveId: id, path: path, rows: report.rows))
                    if !global.json && !global.quiet { print("archived \(n) → \(path): \(report.rows["messages"] ?? 0) messages, \(report.rows["receipts"] ?? 0) receipts (verified)") }
                }
                if global.json { try printJSON(out) }
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check an archive: files against the manifest (sha256, size), zstd checksums, row counts, media items, and the database while the partition exists. Exit 1 on any damage.",
            discussion: Examples.text("chatstore archive verify /srv/archive/messages_p20261122", "chatstore archive verify /srv/archive --offline --json"))
        @OptionGroup var global: GlobalOptions
        @Argument(help: "An archive (DIR/<partition>, or its manifest.json), or a directory of archives (each is verified). Example: chatstore archive verify /srv/archive") var path: String
        @Flag(name: .long, help: "Do not compare with the database.") var offline = false

        func run() throws {
            try runReportingErrors {
                let conn = offline ? nil : try? PostgresConnection(settings: global.connectionSettings(), logger: global.makeLogger())
                // An archive, a manifest.json, or a directory of archives (each is verified).
                let fm = FileManager.default
                var root = path
                if (path as NSString).lastPathComponent == "manifest.json" { root = (path as NSString).deletingLastPathComponent }
                var archives: [String] = []
                let single = fm.fileExists(atPath: root + "/manifest.json")
                if single {
                    archives = [root]
                } else {
                    archives = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).sorted()
                        .filter { !$0.hasPrefix(".") && fm.fileExists(atPath: root + "/" + $0 + "/manifest.json") }.map { root + "/" + $0 }
                }
                guard !archives.isEmpty else {
                    printError("\(path) is not an archive: it has no manifest.json, and no directory in it has one (give DIR/<partition>, or the archive directory)")
                    throw ExitCode(ExitCodes.noInput)
                }
                var reports: [ArchiveVerifier.Report] = []
                for a in archives {
                    let r = try ArchiveVerifier().verify(path: a, connection: conn)
                    reports.append(r)
                    if !global.json && !global.quiet {
                        print(r.ok ? "ok: \(a) (\(r.rows.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))\(r.checkedAgainstDatabase ? ", matches the database" : ""))" : "DAMAGED: \(a)")
                    }
                    for p in r.problems { printError(p) }
                }
                if global.json { if single { try printJSON(reports[0]) } else { try printJSON(reports) } }
                if reports.contains(where: { !$0.ok }) { throw ExitCode(ExitCodes.failure) }
            }
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load an archive back (re-creating its partition range if needed). Verifies first; idempotent.",
            discussion: Examples.text("chatstore archive restore /srv/archive/messages_p20261122"))
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Archive directory.") var path: String

        func run() throws {
            try runReportingErrors {
                let conn = try global.connect(global.makeLogger())
                let r = try ArchiveRestorer(logger: global.makeLogger()).restore(path: path, into: conn)
                if global.json { try printJSON(r) } else if !global.quiet {
                    print("restored \(r.partition): \(r.messagesAdded) of \(r.messages) messages, \(r.receiptsAdded) of \(r.receipts) receipts, \(r.mediaAdded) of \(r.media) media added")
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What the archive ledger (chat.archives) knows.",
            discussion: Examples.text("chatstore archive list", "chatstore archive list --json"))
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try runReportingErrors {
                let conn = try global.connect(global.makeLogger())
                // Timestamps in ISO 8601, as in every JSON chatstore writes.
                struct Row: Encodable { var id: Int64; var partition: String; var from: String; var to: String; var path: String; var rows: Int64; var bytes: Int64; var verifiedAt: String?; var detachedAt: String?; var droppedAt: String? }
                func iso(_ r: PostgresRow, _ column: String) throws -> String? { try r.decode(Date?.self, column).map(PostgresTimestamp.iso8601) }
                let rows = try conn.query("SELECT * FROM chat.archives ORDER BY range_start, archive_id").map { r in
                    Row(id: try r.decode(Int64.self, "archive_id"), partition: try r.decode(String.self, "partition_name"),
                        from: try iso(r, "range_start")!, to: try iso(r, "range_end")!, path: try r.decode(String.self, "path"),
                        rows: try r.decode(Int64.self, "row_count"), bytes: try r.decode(Int64.self, "bytes"),
                        verifiedAt: try iso(r, "verified_at"), detachedAt: try iso(r, "detached_at"), droppedAt: try iso(r, "dropped_at"))
                }
                if global.json { try printJSON(rows) } else {
                    for r in rows { print("\(r.id)  \(r.partition)  [\(r.from), \(r.to))  \(r.rows) rows  \(r.bytes) bytes  \(r.droppedAt != nil ? "dropped" : r.detachedAt != nil ? "detached" : "live")  \(r.path)") }
                }
            }
        }
    }
}

extension ChatStoreCommand.Partitions {
    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Archive, verify, record, detach and drop message partitions (with their receipts) older than an age. Never drops without a verified archive; a killed run resumes.",
            discussion: Examples.text("chatstore partitions retire --older-than 90d --archive-dir /srv/a --dry-run", "chatstore partitions retire --older-than 12w --archive-dir /srv/a --json"))
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: "Age with a unit (90d, 12w, 36h): partitions that ended before now minus this are retired. A bare number is refused (seconds would retire nearly everything). Example: --older-than 90d") var olderThan: String
        @Option(name: .long, help: "Where archives go.") var archiveDir: String
        @Flag(name: .long, help: "Detach but keep the tables (drop them yourself later).") var keepTable = false
        @Option(name: .long, help: ArgumentHelp("Stop after this step (export, verify, detach) to test resuming.", visibility: .hidden)) var stopAfter: String?
        @Flag(name: .long, help: "Show what would be archived, detached and dropped, with row counts; change nothing. Example: --dry-run --json") var dryRun = false

        func validate() throws { _ = try age() }

        func age() throws -> TimeInterval {
            guard let d = DurationArgument(argument: olderThan) else { throw ValidationError("--older-than must look like 90d, 12w or 36h, got \(olderThan)") }
            guard d.hadUnit else { throw ValidationError("--older-than \(olderThan) has no unit: write \(olderThan)d for days (or w, h)") }
            return d.seconds
        }

        func run() throws {
            try runJobCommand {
                let conn = try global.connect(global.makeLogger())
                if dryRun {
                    let plan = try Retirement(logger: global.makeLogger()).plan(conn, olderThan: Date().addingTimeInterval(-(try age())), keepTables: keepTable)
                    if global.json { try printJSON(plan) } else if !global.quiet {
                        if plan.isEmpty { print("nothing to retire") }
                        for p in plan {
                            print("\(p.partition): would \(p.steps.joined(separator: ", ")) — \(p.messages) messages, \(p.receipts) receipts\(p.archive.map { " (archived in \($0))" } ?? "")")
                        }
                    }
                    return
                }
                try FileManager.default.createDirectory(atPath: archiveDir, withIntermediateDirectories: true)
                let r = try Retirement(logger: global.makeLogger()).retire(conn, olderThan: Date().addingTimeInterval(-(try age())), directory: archiveDir,
                                                                          keepTables: keepTable, stopAfter: stopAfter.flatMap { Retirement.Step(rawValue: $0) })
                if global.json { try printJSON(r) } else if !global.quiet {
                    if r.isEmpty { print("nothing to retire") }
                    for p in r { print("\(p.partition): \(p.steps.isEmpty ? "already done" : p.steps.joined(separator: ", ")) — \(p.messages) messages, \(p.receipts) receipts in \(p.path)") }
                }
            }
        }
    }
}
