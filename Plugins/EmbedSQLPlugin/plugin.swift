// Build tool plugin: embeds Migrations/*.sql and Queries/*.sql into the ChatStore module as
// Swift source generated in the build directory, so the binary runs alone from any directory
// and no generated file is committed. Editing a SQL file rebuilds the module; SwiftPM lists the
// folders only when it re-reads the package, so after adding a file, `touch Package.swift`.
import Foundation
import PackagePlugin

@main
struct EmbedSQLPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        var inputs: [URL] = []
        for folder in ["Migrations", "Queries"] {
            let dir = root.appending(path: folder)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path(percentEncoded: false))) ?? []
            inputs += names.filter { $0.hasSuffix(".sql") }.sorted().map { dir.appending(path: $0) }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedSQL.swift")
        return [.buildCommand(
            displayName: "Embedding \(inputs.count) SQL files",
            executable: try context.tool(named: "EmbedSQLTool").url,
            arguments: [output.path(percentEncoded: false)] + inputs.map { $0.path(percentEncoded: false) },
            inputFiles: inputs,
            outputFiles: [output]
        )]
    }
}
