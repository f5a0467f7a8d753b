import ArgumentParser
import ChatStore
import Foundation

extension ChatStoreCommand {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import real chat exports: WhatsApp .txt or Telegram result.json.",
            discussion: Examples.text("chatstore import whatsapp \"WhatsApp Chat with Ann.txt\" --timezone Asia/Tokyo", prefix: "Users, the conversation, members, messages and media rows (file name, no bytes) are created with stable ids: importing the same file again adds nothing. Unparseable lines are listed with their line numbers (exit 2)."),
            subcommands: [WhatsApp.self, Telegram.self])
    }
}

extension WhatsAppImporter.DateOrder: ExpressibleByArgument {}

func printImport(_ r: ImportLoader.Report, _ global: GlobalOptions) throws {
    if global.json { try printJSON(r) } else if !global.quiet {
        print("\(r.source): conversation \(r.conversationId): \(r.messagesInFile) messages in the file, \(r.messagesAdded) added\(r.messagesReplaced > 0 ? ", \(r.messagesReplaced) replaced (other times for the same messages: a corrected --timezone)" : ""), \(r.users) users, \(r.media) media rows")
    }
    for p in r.problems { printError(p) }
}

extension ChatStoreCommand.Import {
    struct WhatsApp: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "whatsapp", abstract: "Import a WhatsApp \"Export chat\" .txt file (Android or iOS).",
            discussion: Examples.text("chatstore import whatsapp \"WhatsApp Chat with Ann.txt\" --timezone Asia/Tokyo", "chatstore import whatsapp chat.txt --date-order mdy --json"))
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The exported .txt file; - is standard input.") var file: String
        @Option(name: .long, help: "Date order in the headers: dmy, mdy or ymd (default: decided from the file, day first when ambiguous).") var dateOrder: WhatsAppImporter.DateOrder?
        @Option(name: .long, help: "The phone's time zone (exports have local times), e.g. Europe/Berlin.") var timezone: String = "UTC"

        func run() throws {
            try runReportingErrors {
                guard let tz = TimeZone(identifier: timezone) else { throw ValidationError("unknown time zone \(timezone)") }
                guard let data = readInput(file) else { throw ValidationError("cannot read \(file)") }
                var imp = WhatsAppImporter()
                imp.dateOrder = dateOrder
                imp.timeZone = tz
                let chat = imp.parse(text: String(decoding: data, as: UTF8.self), fileName: file)
                let conn = try global.connect(global.makeLogger())
                let r = try ImportLoader(logger: global.makeLogger()).load(chat, into: conn)
                try printImport(r, global)
                if !r.problems.isEmpty { throw ExitCode(ExitCodes.anomalies) }
            }
        }
    }

    struct Telegram: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "telegram", abstract: "Import a Telegram Desktop result.json (one chat or a whole account).",
            discussion: Examples.text("chatstore import telegram ~/Downloads/Telegram/result.json"))
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The exported result.json; - is standard input.") var file: String
        @Option(name: .long, help: "Time zone of `date` fields in old exports without date_unixtime.") var timezone: String = "UTC"

        func run() throws {
            try runReportingErrors {
                guard let tz = TimeZone(identifier: timezone) else { throw ValidationError("unknown time zone \(timezone)") }
                guard let data = readInput(file) else { throw ValidationError("cannot read \(file)") }
                var imp = TelegramImporter()
                imp.timeZone = tz
                let chats = try imp.parse(data: data, fileName: file)
                let conn = try global.connect(global.makeLogger())
                var problems = 0
                for chat in chats where !chat.messages.isEmpty || !chat.problems.isEmpty {
                    let r = try ImportLoader(logger: global.makeLogger()).load(chat, into: conn)
                    try printImport(r, global)
                    problems += r.problems.count
                }
                if problems > 0 { throw ExitCode(ExitCodes.anomalies) }
            }
        }
    }
}

/// A file's bytes, or standard input's for `-`.
func readInput(_ path: String) -> Data? {
    path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: path)
}
