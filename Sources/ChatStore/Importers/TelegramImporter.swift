import Foundation

/// Reads Telegram Desktop's JSON export (`result.json`): a single chat (`{name, type, id,
/// messages}`) or a whole account (`{chats: {list: [...]}}`).
///
/// Messages: `id`, `type` (`message` or `service`), `date_unixtime` (or only `date`, local time,
/// in old exports), `from`/`from_id` (`"user123"` or a number in old exports), `actor`/`actor_id`
/// for service messages, `reply_to_message_id`, `edited`/`edited_unixtime`, `text` as a string or
/// an array of strings and `{type, text}` entities, and media fields (`photo`, `file`,
/// `media_type`, `mime_type`).
public struct TelegramImporter {
    /// Time zone of `date` when `date_unixtime` is missing.
    public var timeZone: TimeZone = TimeZone(identifier: "UTC")!

    public init() {}

    /// Parses the export into one chat per conversation.
    /// - Throws: `EventError` when the file is not JSON or has neither shape.
    public func parse(data: Data, fileName: String) throws -> [ImportedChat] {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw EventError("\(fileName):\(TelegramImporter.position(of: error, in: data)) not valid JSON")
        }
        guard let obj = root as? [String: Any] else { throw EventError("\(fileName): expected a JSON object at the top") }
        if let chats = obj["chats"] as? [String: Any], let list = chats["list"] as? [[String: Any]] {
            return list.enumerated().map { parseChat($0.element, index: $0.offset) }
        }
        if obj["messages"] is [Any] { return [parseChat(obj, index: 0)] }
        throw EventError("\(fileName): neither a single-chat export (messages) nor an account export (chats.list)")
    }

    func parseChat(_ chat: [String: Any], index: Int) -> ImportedChat {
        let chatID = (chat["id"] as? NSNumber)?.int64Value ?? Int64(index)
        let type = chat["type"] as? String ?? "personal_chat"
        var messages: [ImportedChat.Message] = []
        var problems: [(Int, String)] = []
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        // Without date_unixtime, `date` is local time: the message id is then built from it as
        // written (read as UTC), so it does not change with --timezone.
        let written = DateFormatter()
        written.locale = Locale(identifier: "en_US_POSIX")
        written.timeZone = TimeZone(identifier: "UTC")!
        written.dateFormat = formatter.dateFormat
        for (i, any) in (chat["messages"] as? [Any] ?? []).enumerated() {
            guard let m = any as? [String: Any] else { problems.append((i + 1, "message \(i + 1) is not an object")); continue }
            guard let id = (m["id"] as? NSNumber)?.int64Value else { problems.append((i + 1, "message \(i + 1) has no numeric id")); continue }
            var at: Int64?
            var outOfRange = false
            func micros(_ seconds: Int64?) -> Int64? {
                guard let seconds else { return nil }
                guard let us = TelegramImporter.microseconds(seconds) else { outOfRange = true; return nil }
                return us
            }
            if let u = m["date_unixtime"] as? String, let s = Int64(u) { at = micros(s) }
            else if let u = m["date_unixtime"] as? NSNumber { at = micros(TelegramImporter.wholeSeconds(u)) }
            else if let d = m["date"] as? String, let date = formatter.date(from: d) { at = micros(TelegramImporter.wholeSeconds(date.timeIntervalSince1970)) }
            guard let at else {
                problems.append((i + 1, outOfRange ? "message id \(id) has a date outside 1970-9999" : "message id \(id) has no readable date")); continue
            }
            let service = (m["type"] as? String) == "service"
            let name = (service ? m["actor"] : m["from"]) as? String
            var key: String?
            let rawKey = service ? m["actor_id"] : m["from_id"]
            if let s = rawKey as? String { key = s } else if let n = rawKey as? NSNumber { key = "user\(n.int64Value)" }
            var text = TelegramImporter.flatten(m["text"])
            if service, let action = m["action"] as? String { text = text.isEmpty ? action : "\(action): \(text)" }
            var kind = service ? "system" : "text"
            var file: String?, mime: String?
            if let p = m["photo"] as? String { kind = "media"; file = p; mime = "image/jpeg" }
            if let f = m["file"] as? String { kind = "media"; file = f; mime = m["mime_type"] as? String ?? WhatsAppImporter.mimeType(f) }
            if kind != "media", m["media_type"] != nil { kind = "media"; mime = m["mime_type"] as? String }
            var edited: Int64?
            if let u = m["edited_unixtime"] as? String, let s = Int64(u) { edited = TelegramImporter.microseconds(s) }
            else if let e = m["edited"] as? String, let d = formatter.date(from: e) { edited = TelegramImporter.wholeSeconds(d.timeIntervalSince1970).flatMap(TelegramImporter.microseconds) }
            messages.append(ImportedChat.Message(
                sourceID: id, at: at, sender: service && name == nil ? nil : (name ?? key ?? "unknown"),
                senderKey: key ?? name, text: text, kind: kind, mediaFileName: file, mediaMime: mime,
                replyToSourceID: (m["reply_to_message_id"] as? NSNumber)?.int64Value, editedAt: edited, line: i + 1,
                idTime: m["date_unixtime"] != nil ? nil : (m["date"] as? String).flatMap { written.date(from: $0) }.flatMap { TelegramImporter.wholeSeconds($0.timeIntervalSince1970) }.flatMap(TelegramImporter.microseconds)))
        }
        return ImportedChat(source: "telegram", chatKey: String(chatID), title: chat["name"] as? String,
                            isGroup: !(type == "personal_chat" || type == "bot_chat" || type == "saved_messages"),
                            messages: messages, problems: problems)
    }

    /// Where JSONSerialization found the error, as ` line L, column C: what` (Foundation reports a
    /// character offset, "Invalid value around character 17."; the line and column are counted
    /// from it, the column in characters).
    static func position(of error: Error, in data: Data) -> String {
        let debug = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? ""
        let what = debug.components(separatedBy: " around ").first.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ". ")) } ?? ""
        guard let r = debug.range(of: #"character [0-9]+"#, options: .regularExpression),
              let offset = Int(debug[r].dropFirst("character ".count)) else {
            return what.isEmpty ? "" : " \(what.lowercased()):"
        }
        var line = 1, column = 1
        for b in data.prefix(offset) {
            if b == 10 { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
        }
        return "\(line):\(column): \(what.isEmpty ? "here" : what.lowercased()):"
    }

    /// `text` as a string, or an array of strings and `{type, text}` entities, to plain text.
    static func flatten(_ v: Any?) -> String {
        if let s = v as? String { return s }
        if let parts = v as? [Any] {
            return parts.map { p -> String in
                if let s = p as? String { return s }
                if let d = p as? [String: Any] { return d["text"] as? String ?? "" }
                return ""
            }.joined()
        }
        return ""
    }

    /// Microseconds since the epoch for a date in seconds, or nil outside 1970-01-01 to
    /// 9999-12-31 (PostgreSQL's range is wider, but no chat export is older than Unix time, and
    /// nothing in it may overflow).
    static func microseconds(_ seconds: Int64) -> Int64? {
        guard seconds >= 0, seconds <= 253_402_300_799 else { return nil }
        return seconds * 1_000_000
    }

    /// A JSON number or a time interval as whole seconds, or nil when it is not finite or out of range.
    static func wholeSeconds(_ n: NSNumber) -> Int64? { wholeSeconds(n.doubleValue) }
    static func wholeSeconds(_ d: Double) -> Int64? {
        guard d.isFinite, d >= -9.2e18, d <= 9.2e18 else { return nil }
        return Int64(d.rounded(.down))
    }
}
