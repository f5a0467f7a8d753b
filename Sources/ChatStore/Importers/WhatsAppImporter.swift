import Foundation

/// Reads WhatsApp's "Export chat" text files, Android and iOS.
///
/// Handles `dd/mm/yy, HH:MM - Name: text` (Android) and `[dd/mm/yy, HH:MM:SS] Name: text` (iOS),
/// any date order (decided from the file, or given), `/`, `.` or `-` separators, 2- or 4-digit
/// years, 12- and 24-hour clocks with any AM/PM spelling (`PM`, `pm`, `p.m.`, `p. m.`, after a
/// space, a no-break space or a narrow no-break space), the leading U+200E mark, continuation lines,
/// system lines (no `Name:`), and the media placeholders `<Media omitted>`, `<attached: FILE>`,
/// `image omitted` (and video, audio, sticker, GIF, document) and `FILE (file attached)`.
public struct WhatsAppImporter {
    public enum DateOrder: String, Sendable, CaseIterable { case dmy, mdy, ymd }

    /// Date order; nil decides from the file (a first field above 12 means day first, a second
    /// above 12 means month first; ambiguous files default to day first).
    public var dateOrder: DateOrder?
    /// The phone's time zone (exports carry local times without an offset).
    public var timeZone: TimeZone = TimeZone(identifier: "UTC")!

    public init() {}

    static let header = try! NSRegularExpression(pattern:
        "^[\\u200E\\u200F\\uFEFF]*\\[?(\\d{1,4})[./-](\\d{1,2})[./-](\\d{1,4}),?[\\s\\u00A0\\u202F]+(\\d{1,2})[:.](\\d{2})(?:[:.](\\d{2}))?"
        + "(?:[\\s\\u00A0\\u202F]*([AaPp])\\.?[\\s\\u00A0\\u202F]?[Mm]\\.?)?(\\]?)[\\s\\u00A0\\u202F]*(?:-[\\s\\u00A0\\u202F]+)?(.*)$")

    struct Header {
        var a: Int, b: Int, c: Int, hour: Int, minute: Int, second: Int, ampm: Character?, bracketed: Bool, rest: String
        var aDigits: Int
    }

    /// The value of a run of decimal digits of any script: `\\d` matches Unicode digits, and
    /// phones set to Arabic, Persian or Hindi write dates with their own (`٢٠٢٦`), which `Int(_:)`
    /// does not read. Nil for anything else or more than 9 digits.
    static func number(_ s: String) -> Int? {
        guard !s.isEmpty, s.count <= 9 else { return nil }
        var v = 0
        for ch in s {
            guard let d = ch.wholeNumberValue, (0...9).contains(d), ch.unicodeScalars.count == 1, ch.unicodeScalars.first!.properties.numericType == .decimal else { return nil }
            v = v * 10 + d
        }
        return v
    }

    static func parseHeader(_ line: String) -> Header? {
        let ns = line as NSString
        guard let m = header.firstMatch(in: line, range: NSRange(location: 0, length: ns.length)) else { return nil }
        func g(_ i: Int) -> String? {
            let r = m.range(at: i)
            return r.location == NSNotFound ? nil : ns.substring(with: r)
        }
        guard let a = g(1), let av = number(a), let b = g(2).flatMap(number), let c = g(3).flatMap(number),
              let h = g(4).flatMap(number), let mi = g(5).flatMap(number) else { return nil }
        let rest = g(9) ?? ""
        let bracketed = !(g(8) ?? "").isEmpty
        // Android lines need " - " between the time and the rest; iOS lines need the bracket.
        if !bracketed && !line.contains(" - ") && !line.contains("\u{00A0}- ") { return nil }
        return Header(a: av, b: b, c: c, hour: h, minute: mi, second: g(6).flatMap(number) ?? 0,
                      ampm: g(7)?.lowercased().first, bracketed: bracketed, rest: rest, aDigits: a.count)
    }

    static let mediaPatterns: [(NSRegularExpression, String)] = [
        (try! NSRegularExpression(pattern: "^<Media omitted>$"), "application/octet-stream"),
        (try! NSRegularExpression(pattern: "^<attached: ([^>]+)>$"), ""),
        (try! NSRegularExpression(pattern: "^(image|video|audio|sticker|GIF|document|Contact card) omitted$", options: .caseInsensitive), ""),
        (try! NSRegularExpression(pattern: "^(.+\\.[A-Za-z0-9]{2,5}) \\(file attached\\)$"), ""),
    ]

    static func media(_ text: String) -> (file: String?, mime: String)? {
        let t = text.trimmingCharacters(in: CharacterSet(charactersIn: "\u{200E}\u{200F} "))
        let ns = t as NSString
        for (re, mime) in mediaPatterns {
            guard let m = re.firstMatch(in: t, range: NSRange(location: 0, length: ns.length)) else { continue }
            var file: String?
            if m.numberOfRanges > 1, m.range(at: 1).location != NSNotFound { file = ns.substring(with: m.range(at: 1)) }
            if let f = file, ["image", "video", "audio", "sticker", "gif", "document", "contact card"].contains(f.lowercased()) {
                return (nil, f.lowercased() == "image" ? "image/jpeg" : f.lowercased() == "video" ? "video/mp4" : f.lowercased() == "audio" ? "audio/ogg" : "application/octet-stream")
            }
            return (file, mime.isEmpty ? mimeType(file ?? "") : mime)
        }
        return nil
    }

    static func mimeType(_ name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "jpg", "jpeg": return "image/jpeg"
        case "png": return "image/png"
        case "webp": return "image/webp"
        case "gif": return "image/gif"
        case "mp4": return "video/mp4"
        case "opus", "ogg": return "audio/ogg"
        case "pdf": return "application/pdf"
        case "vcf": return "text/vcard"
        default: return "application/octet-stream"
        }
    }

    /// Parses an export.
    /// - Parameter chatKey: identity of the chat (default: derived from the first message line).
    public func parse(text: String, fileName: String) -> ImportedChat {
        var lines = text.components(separatedBy: "\n").map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        if lines.first?.hasPrefix("\u{FEFF}") == true { lines[0].removeFirst() }
        var headers: [(Int, Header)] = []
        for (i, l) in lines.enumerated() { if let h = WhatsAppImporter.parseHeader(l) { headers.append((i, h)) } }
        // Date order from the file.
        let order: DateOrder = dateOrder ?? {
            if headers.contains(where: { $0.1.aDigits == 4 }) { return .ymd }
            if headers.contains(where: { $0.1.a > 12 }) { return .dmy }
            if headers.contains(where: { $0.1.b > 12 }) { return .mdy }
            return .dmy
        }()
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = timeZone
        var messages: [ImportedChat.Message] = []
        var problems: [(Int, String)] = []
        let headerLines = Dictionary(uniqueKeysWithValues: headers)
        for (i, line) in lines.enumerated() {
            guard let h = headerLines[i] else {
                if messages.isEmpty {
                    if !line.trimmingCharacters(in: .whitespaces).isEmpty { problems.append((i + 1, "text before the first message header")) }
                } else {
                    messages[messages.count - 1].text += "\n" + line
                }
                continue
            }
            var (y, mo, d): (Int, Int, Int)
            switch order {
            case .dmy: (d, mo, y) = (h.a, h.b, h.c)
            case .mdy: (mo, d, y) = (h.a, h.b, h.c)
            case .ymd: (y, mo, d) = (h.a, h.b, h.c)
            }
            if y < 100 { y += 2000 }
            var hour = h.hour
            if let ap = h.ampm {
                guard (1...12).contains(hour) else { problems.append((i + 1, "hour \(hour) with AM/PM")); continue }
                if ap == "p" && hour != 12 { hour += 12 }
                if ap == "a" && hour == 12 { hour = 0 }
            }
            guard (1...12).contains(mo), (1...31).contains(d), hour < 24, h.minute < 60, h.second < 61,
                  let date = cal.date(from: DateComponents(year: y, month: mo, day: d, hour: hour, minute: h.minute, second: h.second)),
                  cal.component(.day, from: date) == d else {
                problems.append((i + 1, "invalid date or time in message header (order \(order.rawValue))"))
                continue
            }
            // "Name: text" vs a system line (no name, or marked with U+200E right after the header).
            var sender: String?
            var body = h.rest
            if !body.hasPrefix("\u{200E}"), let r = body.range(of: ": "), body.distance(from: body.startIndex, to: r.lowerBound) <= 60 {
                sender = String(body[..<r.lowerBound]).trimmingCharacters(in: CharacterSet(charactersIn: "\u{200E}\u{202A}\u{202C} "))
                body = String(body[r.upperBound...])
            } else if body.hasSuffix(":") && body.count <= 61 {
                sender = String(body.dropLast()); body = ""
            }
            var kind = sender == nil ? "system" : "text"
            var file: String?, mime: String?
            if sender != nil, let m = WhatsAppImporter.media(body) { kind = "media"; file = m.file; mime = m.mime }
            else if sender != nil && body.hasPrefix("\u{200E}") { kind = "system"; sender = nil }   // iOS marks system lines so
            // The id comes from the time as written (read as UTC), not from the zone's reading of it.
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = TimeZone(identifier: "UTC")!
            let written = utc.date(from: DateComponents(year: y, month: mo, day: d, hour: hour, minute: h.minute, second: h.second)) ?? date
            messages.append(ImportedChat.Message(sourceID: Int64(i + 1), at: Int64(date.timeIntervalSince1970) * 1_000_000,
                                                 sender: sender, senderKey: nil, text: body.replacingOccurrences(of: "\u{200E}", with: ""),
                                                 kind: kind, mediaFileName: file, mediaMime: mime, replyToSourceID: nil, editedAt: nil, line: i + 1,
                                                 idTime: Int64(written.timeIntervalSince1970) * 1_000_000))
        }
        for i in messages.indices { while messages[i].text.hasSuffix("\n") { messages[i].text.removeLast() } }
        let key = headers.first.map { lines[$0.0] } ?? fileName
        return ImportedChat(source: "whatsapp", chatKey: key, title: (fileName as NSString).lastPathComponent, isGroup: nil,
                            messages: messages, problems: problems)
    }
}
