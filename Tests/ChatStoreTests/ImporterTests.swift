import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

func fixture(_ path: String) throws -> String {
    try String(contentsOfFile: TestPaths.packageRoot + "/Tests/Fixtures/" + path, encoding: .utf8)
}

func utc(_ s: String) -> Int64 { PostgresTimestamp.parseMicroseconds(s)! }

@Suite struct WhatsAppParsingTests {
    /// Dates written with Arabic-Indic or Devanagari digits (phones set to those languages) parse
    /// as dates and never trap (they did: the
    /// header regex's \\d matches them and `Int(_:)` returned nil, force-unwrapped).
    @Test func headersWithDigitsOfOtherScriptsParseAndNeverTrap() throws {
        let text = """
            ١٢/٠٣/٢٠٢١, ٠٩:١٦ - Alice: مرحبا
            १२/०३/२०२१, ०९:१७ - Bob: नमस्ते
            12/03/2021, 09:18 - Alice: plain
            """
        let chat = WhatsAppImporter().parse(text: text, fileName: "scripts.txt")
        #expect(chat.messages.count == 3, "\(chat.problems)")
        #expect(chat.messages[0].sender == "Alice" && chat.messages[0].text == "مرحبا")
        let times = chat.messages.prefix(3).map(\.at)
        #expect(times == [utc("2021-03-12 09:16:00+00"), utc("2021-03-12 09:17:00+00"), utc("2021-03-12 09:18:00+00")])
    }

    @Test func android24HourDayFirst() throws {
        let chat = WhatsAppImporter().parse(text: try fixture("whatsapp/android-24h-dmy.txt"), fileName: "a.txt")
        let m = chat.messages
        #expect(m.count == 7)
        #expect(m[0].kind == "system" && m[0].sender == nil)
        #expect(m[1].sender == "Alice" && m[1].text == "Hi Bob!" && m[1].at == utc("2021-03-12 09:16:00+00"))
        #expect(m[2].text == "Hello\nthis is a continuation line\n\nand another: with a colon")
        #expect(m[3].kind == "media" && m[3].mediaFileName == nil)
        #expect(m[4].kind == "media" && m[4].mediaFileName == "IMG-20210313-WA0001.jpg" && m[4].mediaMime == "image/jpeg")
        #expect(m[5].kind == "system" && m[5].text.hasPrefix("Alice changed the subject"))
        #expect(m[6].text == "😀 see you")
        #expect(chat.problems.count == 1 && chat.problems[0].0 == 10)
    }

    @Test func android12HourMonthFirstWithNarrowNoBreakSpace() throws {
        let m = WhatsAppImporter().parse(text: try fixture("whatsapp/android-12h-mdy.txt"), fileName: "b.txt").messages
        #expect(m.count == 4)
        #expect(m[0].at == utc("2021-03-13 21:05:00+00"))
        #expect(m[1].at == utc("2021-03-13 00:10:00+00"))
        #expect(m[2].at == utc("2021-03-14 12:30:00+00"))
        #expect(m[3].at == utc("2021-03-14 13:00:00+00") && m[3].kind == "media")
    }

    @Test func iOSBracketedWithMarksAttachmentsAndSystemLines() throws {
        let m = WhatsAppImporter().parse(text: try fixture("whatsapp/ios-24h.txt"), fileName: "c.txt").messages
        #expect(m.count == 5)
        #expect(m[0].sender == "Alice" && m[0].at == utc("2021-03-13 21:05:09+00"))
        #expect(m[1].kind == "media")
        #expect(m[2].kind == "media" && m[2].mediaFileName == "00000012-PHOTO-2021-03-13-21-07-00.jpg")
        #expect(m[3].kind == "system" && m[3].sender == nil && m[3].text == "Alice added Carol")
        #expect(m[4].text == "multi\nline")
    }

    @Test func spelledOutAMPMAndTimeZones() throws {
        var imp = WhatsAppImporter()
        imp.timeZone = TimeZone(identifier: "Europe/Madrid")!
        let m = imp.parse(text: try fixture("whatsapp/ios-12h-spanish.txt"), fileName: "d.txt").messages
        #expect(m.count == 2)
        #expect(m[0].at == utc("2021-03-13 08:05:00+00"))   // 9:05 a.m. in Madrid (UTC+1)
        #expect(m[1].at == utc("2021-03-13 20:06:00+00"))
        #expect(m[1].text.hasSuffix("continuation"))
    }

    @Test func yearFirstAndTextBeforeTheFirstHeader() throws {
        let chat = WhatsAppImporter().parse(text: try fixture("whatsapp/leading-junk.txt"), fileName: "e.txt")
        #expect(chat.messages.count == 1 && chat.messages[0].at == utc("2021-03-13 10:00:00+00"))
        #expect(chat.problems.map(\.0) == [1])
    }
}

@Suite struct TelegramParsingTests {
    @Test func singleChatExport() throws {
        let chats = try TelegramImporter().parse(data: Data(try fixture("telegram/single-chat.json").utf8), fileName: "r.json")
        #expect(chats.count == 1)
        let c = chats[0]
        #expect(c.isGroup == false && c.chatKey == "4242")
        #expect(c.messages.count == 7)
        #expect(c.problems.count == 1)   // the message without a date
        #expect(c.messages[1].text == "See https://example.org and this" && c.messages[1].replyToSourceID == 1)
        #expect(c.messages[2].kind == "media" && c.messages[2].mediaMime == "image/jpeg")
        #expect(c.messages[3].mediaFileName == "files/report.pdf" && c.messages[3].mediaMime == "application/pdf")
        #expect(c.messages[4].editedAt == 1_615_541_100_000_000)
        #expect(c.messages[5].kind == "system" && c.messages[5].text == "pin_message")
        #expect(c.messages[6].at == utc("2021-03-12 09:22:00+00"))   // only `date`, read as UTC
        #expect(Set(c.messages.compactMap(\.senderKey)) == ["user111", "user222"])
    }

    @Test func wholeAccountExportWithOldFields() throws {
        let chats = try TelegramImporter().parse(data: Data(try fixture("telegram/account.json").utf8), fileName: "r.json")
        #expect(chats.count == 2)
        #expect(chats[0].isGroup == true && chats[0].messages.count == 3)
        #expect(chats[0].messages[0].senderKey == "user1001")
        #expect(chats[0].messages[1].text == "plain @mum")
        #expect(chats[1].messages[0].at == 1_577_952_000_000_000)
        #expect(throws: EventError.self) { try TelegramImporter().parse(data: Data(try fixture("telegram/broken.json").utf8), fileName: "b.json") }
    }

    @Test func datesTooLargeOrTooEarlyAreProblemsNotTraps() throws {
        let json = """
            {"id": 7, "name": "Chat", "type": "personal_chat", "messages": [
              {"id": 1, "type": "message", "date_unixtime": "9223372036854775807", "from": "A", "from_id": "user1", "text": "x"},
              {"id": 2, "type": "message", "date_unixtime": 1e300, "from": "A", "from_id": "user1", "text": "y"},
              {"id": 3, "type": "message", "date": "0001-01-03T00:00:00", "from": "A", "from_id": "user1", "text": "z"},
              {"id": 4, "type": "message", "date_unixtime": "1700000000", "edited_unixtime": "9223372036854775807", "from": "A", "from_id": "user1", "text": "ok"}
            ]}
            """
        let chats = try TelegramImporter().parse(data: Data(json.utf8), fileName: "big.json")
        #expect(chats.count == 1)
        #expect(chats[0].messages.map(\.sourceID) == [4])
        #expect(chats[0].messages.first?.editedAt == nil)
        #expect(chats[0].problems.count == 3, "\(chats[0].problems)")
        #expect(chats[0].problems.allSatisfy { $0.1.contains("outside 1970-9999") || $0.1.contains("no readable date") })
    }
}

@Suite struct ImportLoadTests {
    @Test func importsLoadAndReimportsAddNothing() throws {
        try TestDatabase.migrated { conn, settings in
            let root = TestPaths.packageRoot + "/Tests/Fixtures/"
            let wa = try runCommand(TestPaths.binary, ["import", "whatsapp", root + "whatsapp/android-24h-dmy.txt", "--json", "--database-url", settings.conninfo])
            #expect(wa.status == 2)   // one line with an impossible date is reported
            #expect(wa.stderr.contains("line 10"))
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages") == 7)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.users") == 2)
            #expect(try conn.scalar(String.self, "SELECT kind FROM chat.conversations") == "direct")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.media WHERE file_name = 'IMG-20210313-WA0001.jpg' AND bytes IS NULL") == 1)
            let again = try runCommand(TestPaths.binary, ["import", "whatsapp", root + "whatsapp/android-24h-dmy.txt", "--json", "--database-url", settings.conninfo])
            #expect(again.stdout.contains("\"messagesAdded\" : 0"))
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages") == 7)
            let tg = try runCommand(TestPaths.binary, ["import", "telegram", root + "telegram/account.json", "--database-url", settings.conninfo])
            #expect(tg.status == 0, "\(tg.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.conversations") == 3)
            _ = try runCommand(TestPaths.binary, ["import", "telegram", root + "telegram/account.json", "--database-url", settings.conninfo])
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages") == 11)
            // Imported history is read: nothing unread, and the receipt audit finds nothing.
            let runner = JobRunner(logger: TestDatabase.logger)
            #expect(try UnreadJob(mode: .full).run(conn, runner: runner).totalUnread == 0)
            var audit = ReceiptAuditJob()
            audit.from = PostgresTimestamp.parse("2019-01-01")
            #expect(try audit.run(conn, runner: runner).anomalies == 0)
            let reply = try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE reply_to_id IS NOT NULL")
            #expect(reply == 0)
            let tg1 = try runCommand(TestPaths.binary, ["import", "telegram", root + "telegram/single-chat.json", "--database-url", settings.conninfo])
            #expect(tg1.status == 2)
            // A Telegram problem names the chat and the message's position in it (not a "line").
            #expect(tg1.stderr.contains("chat \"") && tg1.stderr.contains(", message "), "\(tg1.stderr)")
            #expect(!tg1.stderr.contains(", line "), "\(tg1.stderr)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE reply_to_id IS NOT NULL") == 1)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE edited_at IS NOT NULL") == 1)
        }
    }

    /// A re-import with a corrected --timezone replaces the chat's messages (same ids, new
    /// times) instead of adding the chat again; the audit still finds nothing, nothing is unread.
    @Test func aReimportWithAnotherTimeZoneReplacesInsteadOfDuplicating() throws {
        try TestDatabase.migrated { conn, settings in
            let file = TestPaths.packageRoot + "/Tests/Fixtures/whatsapp/ios-24h.txt"
            let first = try runCommand(TestPaths.binary, ["import", "whatsapp", file, "--json", "--database-url", settings.conninfo])
            #expect(first.status == 0, "\(first.stderr)")
            let count = try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages")
            let before = try conn.query("SELECT message_id, sent_at FROM chat.messages ORDER BY message_id").map { (try $0.decode(Int64.self, "message_id"), try $0.decode(Date.self, "sent_at")) }
            #expect(count > 3)
            let again = try runCommand(TestPaths.binary, ["import", "whatsapp", file, "--timezone", "Asia/Tokyo", "--json", "--database-url", settings.conninfo])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("\"messagesAdded\" : 0"), "\(again.stdout)")
            #expect(again.stdout.contains("\"messagesReplaced\" : \(count)"), "\(again.stdout)")
            let after = try conn.query("SELECT message_id, sent_at FROM chat.messages ORDER BY message_id").map { (try $0.decode(Int64.self, "message_id"), try $0.decode(Date.self, "sent_at")) }
            #expect(after.map(\.0) == before.map(\.0), "the same ids")
            // Tokyo is UTC+9: every message moved nine hours earlier.
            #expect(zip(before, after).allSatisfy { abs($0.1.timeIntervalSince($1.1) - 9 * 3600) < 1 }, "\(before.prefix(2)) \(after.prefix(2))")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.conversations") == 1)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts r WHERE NOT EXISTS (SELECT 1 FROM chat.messages m WHERE m.conversation_id = r.conversation_id AND m.message_id = r.message_id AND m.sent_at = r.sent_at)") == 0)
            let runner = JobRunner(logger: TestDatabase.logger)
            #expect(try UnreadJob(mode: .full).run(conn, runner: runner).totalUnread == 0)
            var audit = ReceiptAuditJob()
            audit.from = PostgresTimestamp.parse("2019-01-01")
            #expect(try audit.run(conn, runner: runner).anomalies == 0)
            // And back to UTC: replaced again, still one copy.
            let back = try runCommand(TestPaths.binary, ["import", "whatsapp", file, "--json", "--database-url", settings.conninfo])
            #expect(back.stdout.contains("\"messagesReplaced\" : \(count)"), "\(back.stdout)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages") == count)
        }
    }

    /// Malformed Telegram JSON is reported with its line and column.
    @Test func malformedTelegramJSONNamesLineAndColumn() throws {
        let data = Data("{\n  \"name\": \"x\",\n  \"messages\": [1,, 2]\n}".utf8)
        #expect(throws: EventError.self) { try TelegramImporter().parse(data: data, fileName: "result.json") }
        do { _ = try TelegramImporter().parse(data: data, fileName: "result.json") } catch {
            #expect("\(error)".hasPrefix("result.json:3:18: invalid value"), "\(error)")
        }
        let dir = try TestPaths.temporaryDirectory()
        try data.write(to: URL(fileURLWithPath: dir + "/result.json"))
        let r = try runCommand(TestPaths.binary, ["import", "telegram", dir + "/result.json", "--database-url", "host=/nonexistent"])
        #expect(r.stderr.contains("result.json:3:18"), "\(r.stderr)")
        #expect(!r.stderr.contains("correct format"), "\(r.stderr)")
    }

    /// Messages PostgreSQL would refuse or misfile are reported with the chat and the line, and
    /// the rest of the chat loads: a NUL in a text, a pre-1970 date.
    @Test func messagesThatCannotBeStoredAreReportedAndTheRestLoads() throws {
        try TestDatabase.migrated { conn, _ in
            let text = """
                13/03/2021, 09:15 - Ann: hello
                13/03/2021, 09:16 - Bob: with a \u{0} nul
                13/03/021, 09:17 - Ann: three-digit year
                13/03/1969, 09:18 - Bob: before 1970
                13/03/2021, 09:19 - Bob: bye
                """
            let chat = WhatsAppImporter().parse(text: text, fileName: "WhatsApp Chat with Bob.txt")
            let r = try ImportLoader(logger: TestDatabase.logger).load(chat, into: conn)
            // The 3-digit year reads as 2021 (WhatsApp's short years), so that line loads.
            #expect(r.messagesAdded == 3, "\(r.problems)")
            #expect(r.problems.contains { $0.contains("line 2") && $0.contains("NUL") }, "\(r.problems)")
            #expect(r.problems.contains { $0.contains("line 4") }, "\(r.problems)")
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages_default") == 0)
            #expect(try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages") == 3)
            #expect(r.problems.count == 2)
        }
    }
}