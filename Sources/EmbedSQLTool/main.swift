// Writes the Swift source that carries the package's SQL into the binary, at build time (run by
// Plugins/EmbedSQLPlugin): `EmbedSQLTool OUTPUT.swift FILE.sql...`, each file tagged by its folder
// (`Migrations/…` or `Queries/…`). Nothing it writes is committed.
import Foundation

let args = CommandLine.arguments.dropFirst()
guard let output = args.first else {
    FileHandle.standardError.write(Data("usage: EmbedSQLTool OUTPUT.swift FILE.sql...\n".utf8))
    exit(64)
}

/// A raw string literal that cannot be closed early by the text.
func literal(_ text: String) -> String {
    var hashes = "#"
    while text.contains("\"\"\"" + hashes) || text.contains("\"" + hashes) { hashes += "#" }
    return hashes + "\"\"\"\n" + text + "\n\"\"\"" + hashes
}

var groups: [String: [(String, String)]] = ["Migrations": [], "Queries": []]
for path in args.dropFirst() {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().lastPathComponent
    guard groups[folder] != nil, url.pathExtension == "sql" else { continue }
    do {
        groups[folder]!.append((url.lastPathComponent, try String(contentsOf: url, encoding: .utf8)))
    } catch {
        FileHandle.standardError.write(Data("EmbedSQLTool: \(path): \(error.localizedDescription)\n".utf8))
        exit(1)
    }
}
var out = "// Generated at build time by Plugins/EmbedSQLPlugin from Migrations/ and Queries/. Not committed.\n\n"
out += "/// SQL files compiled into the binary.\nenum EmbeddedSQL {\n"
for (name, folder) in [("migrations", "Migrations"), ("queries", "Queries")] {
    out += "    /// `\(folder)/*.sql`, by file name, in name order.\n"
    out += "    static let \(name): [(name: String, text: String)] = [\n"
    for (file, text) in groups[folder]!.sorted(by: { $0.0 < $1.0 }) {
        out += "        (\"\(file)\", \(literal(text))),\n"
    }
    out += "    ]\n"
}
out += "}\n"
// Rewrite only when the content changed, so an unchanged SQL tree recompiles nothing.
if (try? String(contentsOfFile: output, encoding: .utf8)) != out {
    do { try out.write(toFile: output, atomically: true, encoding: .utf8) } catch {
        FileHandle.standardError.write(Data("EmbedSQLTool: \(output): \(error.localizedDescription)\n".utf8))
        exit(1)
    }
}
