import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

/// Long work shows one redrawn progress line on a terminal, and nothing otherwise.
@Suite struct ProgressTests {
    /// Runs the binary under a pseudo-terminal (`script`, from util-linux) and returns what the
    /// terminal received.
    func onTerminal(_ arguments: [String]) throws -> CommandResult {
        let quoted = ([TestPaths.binary] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try runCommand("/usr/bin/script", ["-q", "-e", "-c", quoted, "/dev/null"])
    }

    @Test func longWorkShowsPhaseDoneTotalRateAndTimeLeftOnATerminalOnly() throws {
        try TestDatabase.migrated { conn, settings in
            let url = ["--database-url", settings.conninfo]
            let generate = try onTerminal(["generate", "--users", "1500", "--days", "3"] + url)
            #expect(generate.status == 0, "\(generate.stdout)")
            let screen = generate.stdout
            // Redrawn in place: carriage return and erase-line, never a newline per update.
            #expect(screen.contains("\r\u{1B}[Kgenerate: "), "\(screen.prefix(400))")
            #expect(screen.range(of: #"generate: day [1-3]/3: [0-9,]+/[0-9,]+ messages \([0-9]+%\)"#, options: .regularExpression) != nil, "\(screen.prefix(600))")
            // Each day is its own phase, and so is its commit (the server's foreign-key checks).
            #expect(screen.contains("generate: day 3/3: committing"), "\(screen.suffix(600))")
            #expect(screen.contains("messages/s"), "a rate: \(screen.prefix(800))")
            #expect(screen.contains(" left"), "a time left: \(screen.prefix(800))")
            #expect(!screen.contains("generate: 1/") || screen.split(separator: "\n").filter { $0.contains("generate: ") }.count == 1, "one line, redrawn")
            // The summary starts on a wiped line, not at the end of the progress text.
            #expect(screen.contains("\r\u{1B}[Kloaded 1500 users"), "\(screen.suffix(400))")

            // The first day with messages (by the rows, not pg_class: on Citus the coordinator's
            // partitions are empty shells).
            let partition = try conn.scalar(String.self, "SELECT 'messages_p' || to_char(min(sent_at) AT TIME ZONE 'UTC', 'YYYYMMDD') FROM chat.messages")
            let dir = try TestPaths.temporaryDirectory()
            let export = try onTerminal(["archive", "export", "--partition", partition, "--archive-dir", dir] + url)
            #expect(export.status == 0, "\(export.stdout)")
            #expect(export.stdout.contains("\r\u{1B}[Kexport: receipts: "), "\(export.stdout.prefix(600))")
            #expect(export.stdout.contains("\r\u{1B}[Kverify: receipts.ndjson.zst: "), "\(export.stdout.prefix(600))")

            // Nothing with --quiet or --json on a terminal, or when standard error is not one.
            let quiet = try onTerminal(["jobs", "unread", "--full", "--quiet"] + url)
            #expect(quiet.status == 0 && !quiet.stdout.contains("\u{1B}[K"), "\(quiet.stdout)")
            let json = try onTerminal(["archive", "verify", dir, "--json"] + url)
            #expect(!json.stdout.contains("\u{1B}[K"), "\(json.stdout.prefix(300))")
            let piped = try runCommand(TestPaths.binary, ["archive", "verify", dir] + url)
            #expect(piped.status == 0 && !piped.stderr.contains("\u{1B}[K") && !piped.stdout.contains("\u{1B}[K"), "\(piped.stderr)")
        }
    }
}
