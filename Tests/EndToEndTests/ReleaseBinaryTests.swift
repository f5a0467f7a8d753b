import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct ReleaseBinaryTests {
    /// The binary the test script copied alone into an empty directory (the debug binary when the
    /// tests run outside the script, which checks the same embedding).
    var binary: String { ProcessInfo.processInfo.environment["CHATSTORE_RELEASE_BIN"] ?? TestPaths.binary }

    @Test func aBinaryAloneInAnotherDirectoryMigratesADatabase() throws {
        try TestDatabase.withSettings { conn, settings in
            let r = try runCommand(binary, ["migrate", "--json", "--database-url", settings.conninfo])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT max(version) FROM chat.schema_migrations") >= 2)
            let s = try runCommand(binary, ["migrate", "status", "--database-url", settings.conninfo])
            #expect(s.status == 0)
            #expect(s.stdout.contains("0001_schema_v1.sql"))
        }
    }

    @Test func helpExplainsEveryCommand() throws {
        for cmd in [[], ["migrate"], ["migrate", "status"], ["partitions", "ensure"], ["local", "start"], ["copy-out"]] {
            let r = try runCommand(binary, cmd + ["--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("USAGE"), "\(cmd)")
        }
    }

    /// Every command's help has examples that fit a terminal and use only flags the command has;
    /// the shipped completions are what the binary generates, and the man page names every
    /// command and flag (regenerate both with scripts/gen-docs.sh).
    @Test func everyCommandHasExamplesAndTheShippedManPageAndCompletionsMatchTheCommands() throws {
        let dump = try runCommand(binary, ["--experimental-dump-help"])
        #expect(dump.status == 0)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        let man = try String(contentsOfFile: TestPaths.packageRoot + "/share/man/man1/chatstore.1", encoding: .utf8)
        var commands = 0
        func walk(_ c: [String: Any], _ path: [String]) {
            let name = c["commandName"] as? String ?? "?"
            let here = path + [name]
            let subs = c["subcommands"] as? [[String: Any]] ?? []
            guard name != "help" else { return }
            commands += 1
            let discussion = (c["discussion"] as? String) ?? ""
            let options = (c["arguments"] as? [[String: Any]] ?? []).flatMap { ($0["names"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String } }
            #expect(discussion.contains("Examples:\n"), "\(here.joined(separator: " ")) has no examples")
            let examples = discussion.components(separatedBy: "Examples:\n").last?.split(separator: "\n").map(String.init) ?? []
            for e in examples where e.hasPrefix("  ") {
                #expect(e.count <= 78, "\(here.joined(separator: " ")): example too wide for the help's wrapping: \(e)")
                // The flags of an example that runs this very command are flags it has.
                let words = e.split(separator: " ").map(String.init)
                if subs.isEmpty, words.starts(with: here) {
                    for w in words.prefix(while: { !["|", "&&", "||", ">", "#"].contains($0) }) where w.hasPrefix("--") {
                        #expect(options.contains(String(w.dropFirst(2))), "\(here.joined(separator: " ")): example uses \(w), which it does not have")
                    }
                }
            }
            if path.count >= 1 { #expect(man.contains(name), "the man page lacks \(here.joined(separator: " "))") }
            let shown = (c["arguments"] as? [[String: Any]] ?? []).filter { $0["shouldDisplay"] as? Bool ?? true }
                .flatMap { ($0["names"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String } }
            for o in shown where o.count > 1 {
                #expect(man.contains("Fl -\(o)") || man.contains("-\(o)"), "the man page lacks --\(o) of \(here.joined(separator: " "))")
            }
            for s in subs { walk(s, here) }
        }
        walk(try #require(root["command"] as? [String: Any]), [])
        #expect(commands > 30)
        for shell in ["bash", "zsh", "fish"] {
            let generated = try runCommand(binary, ["--generate-completion-script", shell])
            let shipped = try String(contentsOfFile: TestPaths.packageRoot + "/share/completions/chatstore.\(shell)", encoding: .utf8)
            let same = generated.stdout == shipped
            #expect(same, "share/completions/chatstore.\(shell) is stale: run scripts/gen-docs.sh")
        }
    }

    @Test func badFlagsExitWithUsageCodeAndUnreachableServerWith69() throws {
        let r = try runCommand(binary, ["partitions", "ensure", "--ahead", "0"])
        #expect(r.status == 64)
        let c = try runCommand(binary, ["migrate", "status", "--database-url", "postgresql://nobody:secretpw@127.0.0.1:1/x?connect_timeout=2"])
        #expect(c.status == 69)
        #expect(!c.stderr.contains("secretpw"))
    }
}
