import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import ChatStoreZstd
import Foundation
import Testing

/// What an archive's NDJSON holds, value by value, against PostgreSQL's own `row_to_json` of the
/// same rows: the export reads binary COPY and formats timestamps, integers, text and bytea
/// itself, so every kind of value a column can hold is checked here, in a UTF-8 database and in
/// a LATIN1 one (binary COPY's text is then converted).
@Suite struct ArchiveContentTests {
    let logger = TestDatabase.logger

    /// Rows with the awkward values: text with quotes, backslashes, every control character,
    /// non-ASCII letters (and, in UTF-8, an emoji); timestamps with 0 to 6 fractional digits,
    /// before 2000, BC, in year 10000 and ±infinity; negative integers; NULLs; bytea.
    func seed(_ conn: PostgresConnection, utf8: Bool) throws {
        try TestDatabase.seedConversation(conn)
        let day = PartitionGranularity.day.floor(Date())
        try PartitionManager(logger: logger).ensureRange(conn, from: day, until: day.addingTimeInterval(86_400))
        let emoji = utf8 ? " \u{1F600} \u{4E2D}" : ""
        try conn.executeScript("""
            INSERT INTO chat.media (conversation_id, sha256, size_bytes, mime_type, file_name, encoding, external_uri) VALUES
              (100, decode(repeat('0f', 32), 'hex'), 3, 'image/jpeg', 'a "b".jpg', 'external', 'https://cdn.example/a'),
              (100, decode(repeat('ab', 32), 'hex'), 10, 'video/mp4', NULL, 'external', 'https://cdn.example/b');
            INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at, deleted_at)
            SELECT 100, 1000 + i, date_trunc('day', now(), 'UTC') + make_interval(hours => i) + (x.frac || ' microseconds')::interval, 1 + i % 2, 'text',
                   x.body, x.reply, x.client, x.media, x.edited::timestamptz, x.deleted::timestamptz
            FROM (VALUES
                (1, 0, 'plain', NULL::bigint, 'c1', NULL::bytea, NULL, NULL),
                (2, 1, 'quote " backslash \\ slash / tab \t newline \n cr \r', -5, '', decode(repeat('0f', 32), 'hex'), '1999-12-31 23:59:59.999999+00', NULL),
                (3, 100000, E'bs \\b ff \\f vt \\v esc \\x1b bel \\x07 x\\x01y', 9223372036854775807, 'c"3', NULL, '0044-03-15 12:00:00+00 BC', 'infinity'),
                (4, 120000, 'é ü ß\(emoji)', -9223372036854775808, NULL, decode(repeat('ab', 32), 'hex'), '10000-01-01 00:00:00.5+00', '-infinity'),
                (5, 123456, '', 0, 'c5', NULL, '2000-01-01 00:00:00+00', '1970-01-01 00:00:00.000001+00'),
                (6, 999999, NULL, NULL, NULL, NULL, '2000-02-29 12:34:56.01+00', NULL)
            ) AS x(i, frac, body, reply, client, media, edited, deleted);
            INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at)
            SELECT conversation_id, message_id, sent_at, 3 - sender_id, 1 + message_id::int % 3,
                   CASE WHEN message_id % 3 > 0 THEN sent_at + interval '1.5 seconds' END,
                   CASE WHEN message_id % 3 = 2 THEN sent_at + interval '1 minute' END, sent_at
            FROM chat.messages;
            """)
    }

    /// Every line of the archive's file equals `row_to_json` of the same row (bytea compared as
    /// hex digits: the archive writes them without `\\x`).
    func expectSameAsRowToJSON(_ conn: PostgresConnection, archive: String, file: String, table: String, columns: String, orderBy: String) throws {
        var text: [UInt8] = []
        try ZstdDecompressor.decompressFile(path: archive + "/" + file) { text.append(contentsOf: $0) }
        let ours = text.split(separator: 10).map { try? JSONSerialization.jsonObject(with: Data($0)) as? NSDictionary }
        var theirs: [NSDictionary?] = []
        for row in try conn.query(SQL(unsafeRaw: "SELECT row_to_json(t)::text AS j FROM (SELECT \(columns) FROM chat.\(table) ORDER BY \(orderBy)) t")) {
            let j = try row.decode(String.self, "j")
            var o = (try JSONSerialization.jsonObject(with: Data(j.utf8)) as? [String: Any]) ?? [:]
            for (k, v) in o { if let s = v as? String, s.hasPrefix("\\x") { o[k] = String(s.dropFirst(2)) } }
            theirs.append(o as NSDictionary)
        }
        #expect(ours.count == theirs.count && ours.count > 0)
        for (a, b) in zip(ours, theirs) { #expect(a == b, "\(file): archived \(String(describing: a)), row_to_json \(String(describing: b))") }
    }

    func exportAndCompare(_ conn: PostgresConnection) throws {
        let dir = try TestPaths.temporaryDirectory()
        let name = "messages_" + PartitionGranularity.suffix(PartitionGranularity.day.floor(Date()))
        let (_, path, report) = try Retirement(logger: logger).archive(conn, partition: name, directory: dir)
        #expect(report.ok && report.rows["messages"] == 6 && report.rows["receipts"] == 6, "\(report)")
        try expectSameAsRowToJSON(conn, archive: path, file: "messages.ndjson.zst", table: "messages",
                                  columns: "conversation_id, message_id, sent_at, sender_id, kind, body, reply_to_id, client_message_id, media_sha256, edited_at, deleted_at",
                                  orderBy: "conversation_id, message_id")
        try expectSameAsRowToJSON(conn, archive: path, file: "receipts.ndjson.zst", table: "receipts",
                                  columns: "conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at, updated_at",
                                  orderBy: "conversation_id, message_id, recipient_id, sent_at")
    }

    @Test func everyKindOfValueIsArchivedAsRowToJSONWritesIt() throws {
        try TestDatabase.migrated { conn, _ in
            try seed(conn, utf8: true)
            try exportAndCompare(conn)
        }
    }

    /// A database in LATIN1 (legal, and met on old installations): text reaches the archive as
    /// UTF-8.
    @Test func aLatin1DatabaseIsArchivedAsUTF8() throws {
        guard !TestDatabase.onCitus else { return }
        let name = "t_latin1_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try PostgresConnection(settings: try TestDatabase.settings(database: "postgres"), logger: logger)
        try admin.execute(SQL(unsafeRaw: "CREATE DATABASE \(name) ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"))
        defer { _ = try? admin.execute(SQL(unsafeRaw: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")) }
        let conn = try PostgresConnection(settings: try TestDatabase.settings(database: name), logger: logger)
        try Migrator(migrations: Migration.embedded(), logger: logger).migrate(connection: conn)
        #expect(try conn.scalar(String.self, "SELECT current_setting('server_encoding')") == "LATIN1")
        try seed(conn, utf8: false)
        try exportAndCompare(conn)
        var text: [UInt8] = []
        let dir = try TestPaths.temporaryDirectory()
        let (_, path) = try ArchiveExporter(logger: logger).export(conn, partition: "messages_" + PartitionGranularity.suffix(PartitionGranularity.day.floor(Date())), into: dir)
        try ZstdDecompressor.decompressFile(path: path + "/messages.ndjson.zst") { text.append(contentsOf: $0) }
        #expect(String(decoding: text, as: UTF8.self).contains("é ü ß"))
    }

    /// The application keeps writing to the range while it is archived (a day is archived
    /// while late receipts still arrive): every export verifies, and holds what its snapshot saw.
    @Test func anExportWhileTheApplicationWritesToTheRangeVerifies() throws {
        try TestDatabase.migrated { conn, settings in
            try seed(conn, utf8: true)
            final class Stop: @unchecked Sendable {
                let lock = NSLock()
                var stop = false
                var written = 0
                var error: String?
            }
            let state = Stop()
            let writer = Thread {
                do {
                    let w = try PostgresConnection(settings: settings, logger: TestDatabase.logger)
                    var id: Int64 = 50_000
                    while !state.lock.withLock({ state.stop }) {
                        id += 1
                        try w.executeScript("""
                            INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body)
                            VALUES (100, \(id), date_trunc('day', now(), 'UTC') + interval '30 minutes', 1, 'text', 'late');
                            INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id)
                            VALUES (100, \(id), date_trunc('day', now(), 'UTC') + interval '30 minutes', 2)
                            """)
                        state.lock.withLock { state.written += 1 }
                    }
                } catch {
                    state.lock.withLock { state.error = "\(error)" }
                }
            }
            writer.start()
            defer { state.lock.withLock { state.stop = true } }
            let dir = try TestPaths.temporaryDirectory()
            let name = "messages_" + PartitionGranularity.suffix(PartitionGranularity.day.floor(Date()))
            var archived: [Int] = []
            for _ in 0..<4 {
                let (_, _, report) = try Retirement(logger: logger).archive(conn, partition: name, directory: dir)
                #expect(report.ok, "\(report.problems)")
                archived.append(report.rows["messages"] ?? 0)
                Thread.sleep(forTimeInterval: 0.05)
            }
            state.lock.withLock { state.stop = true }
            while !writer.isFinished { Thread.sleep(forTimeInterval: 0.01) }
            #expect(state.error == nil, "\(state.error ?? "")")
            #expect(state.lock.withLock { state.written } > 0)
            // Each archive holds what its snapshot saw: never fewer rows than the one before,
            // never more than the database holds now.
            #expect(archived == archived.sorted() && archived.first! >= 6)
            #expect(archived.last! <= (try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages")))
        }
    }
}
