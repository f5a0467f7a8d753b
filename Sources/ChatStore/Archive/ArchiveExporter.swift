import ChatStorePostgres
import ChatStoreZstd
import Foundation
import Logging

/// Writes a messages partition, the receipts of its messages and the media they reference into an
/// archive directory: zstd-compressed NDJSON (one object per row, column names as fields), a
/// media pack of independent zstd frames with an index, and `manifest.json`. Everything is written
/// into a temporary directory renamed into place when complete.
public struct ArchiveExporter {
    public let logger: Logger
    public var settings = ZstdSettings(level: 3, checksum: true, workers: 1, jobSize: 1 << 20)

    public init(logger: Logger) { self.logger = logger }

    /// How long to wait for the range's lock when another command holds it.
    public var lockWait: Duration = RangeLock.defaultWait

    /// Removes what interrupted exports left in `directory` (`.messages_pYYYYMMDD.partial-PID`
    /// whose process is gone): they are never archives.
    static func removeLeftovers(in directory: String, logger: Logger) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(".") && name.contains(".partial-") {
            guard let pid = Int32(name.split(separator: "-").last ?? ""), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            if (try? FileManager.default.removeItem(atPath: directory + "/" + name)) != nil {
                logger.notice("removed \(directory)/\(name), left by an interrupted export")
            }
        }
    }

    static let messageColumns: [(String, CopyToJSON.Kind)] = [
        ("conversation_id", .number), ("message_id", .number), ("sent_at", .timestamp), ("sender_id", .number), ("kind", .text),
        ("body", .text), ("reply_to_id", .number), ("client_message_id", .text), ("media_sha256", .bytea), ("edited_at", .timestamp),
        ("deleted_at", .timestamp),
    ]
    static let receiptColumns: [(String, CopyToJSON.Kind)] = [
        ("conversation_id", .number), ("message_id", .number), ("sent_at", .timestamp), ("recipient_id", .number), ("status", .number),
        ("delivered_at", .timestamp), ("read_at", .timestamp), ("updated_at", .timestamp),
    ]

    /// Exports one messages partition into `directory/<partition>/`.
    /// - Returns: the manifest and the archive's path.
    public func export(_ conn: PostgresConnection, partition: String, into directory: String) throws -> (ArchiveManifest, String) {
        let e = try RangeLock.with(conn, partition: partition, waiting: lockWait) { try exportLocked(conn, partition: partition, into: directory, detached: nil) }
        return (e.manifest, e.path)
    }

    /// What an export wrote, and the snapshot (`pg_current_snapshot()`) its rows were read in.
    struct Exported {
        var manifest: ArchiveManifest
        var path: String
        var snapshot: String
    }

    /// The export itself, by a caller that holds the range's lock. `detached`: the range of a
    /// partition that is detached (retire's re-export), read from its tables rather than from
    /// the parents.
    func exportLocked(_ conn: PostgresConnection, partition: String, into directory: String, detached: (from: Date, to: Date)?) throws -> Exported {
        let pm = PartitionManager(logger: logger)
        let p: (from: Date, to: Date)
        if let detached {
            p = detached
        } else {
            guard let a = try pm.partitions(conn, parent: "messages").first(where: { $0.name == partition }) else {
                throw ArchiveError("no messages partition named \(partition)")
            }
            p = (a.from, a.to)
        }
        let lo = PostgresTimestamp.format(p.from), hi = PostgresTimestamp.format(p.to)
        // An archive already there is never replaced: the new one is written beside it, under
        // the next free name (`messages_p20261121.2`, `.3`, ...); the ledger says which is current.
        var final = directory + "/" + partition
        var n = 1
        while FileManager.default.fileExists(atPath: final) { n += 1; final = directory + "/" + partition + ".\(n)" }
        ArchiveExporter.removeLeftovers(in: directory, logger: logger)
        let tmp = directory + "/.\(partition).partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: tmp)
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        var done = false
        defer { if !done { try? FileManager.default.removeItem(atPath: tmp) } }

        var files: [ArchiveManifest.File] = []
        let range = "sent_at >= '\(lo)' AND sent_at < '\(hi)'"
        // A detached range is read from its own tables (retire checked that the receipts
        // partition covers exactly the range); an attached one through the parents.
        let (messagesFrom, receiptsFrom) = detached == nil ? ("chat.messages", "chat.receipts")
            : ("chat." + conn.quoteIdentifier(partition), "chat." + conn.quoteIdentifier("receipts_" + partition.dropFirst("messages_".count)))
        // Messages, receipts and media from one snapshot, recorded in the ledger: retire compares
        // the rows' change_xid with it after the detach.
        let snapshot = try conn.snapshotTransaction { c in
            let snap = try c.scalar(String.self, "SELECT pg_current_snapshot()::text")
            let utf8 = try ArchiveExporter.serverIsUTF8(c)
            files.append(try ndjson(c, partition, "messages", "messages.ndjson.zst", ArchiveExporter.messageColumns, messagesFrom, range, tmp, utf8: utf8))
            files.append(try ndjson(c, partition, "receipts", "receipts.ndjson.zst", ArchiveExporter.receiptColumns, receiptsFrom, range, tmp, utf8: utf8))
            files += try mediaPack(c, messages: messagesFrom, range: range, dir: tmp, utf8: utf8)
            return snap
        }

        let schema = try conn.scalar(Int.self, "SELECT coalesce(max(version), 0) FROM chat.schema_migrations WHERE completed")
        var comp = ArchiveManifest.Compression()
        comp.level = settings.level
        let manifest = ArchiveManifest(schemaVersion: schema, table: "messages", partition: partition,
                                       rangeStart: PostgresTimestamp.iso8601(p.from), rangeEnd: PostgresTimestamp.iso8601(p.to),
                                       files: files, compression: comp, toolVersion: ChatStoreVersion.string,
                                       zstdVersion: Zstd.libraryVersion, createdAt: PostgresTimestamp.iso8601(Date()))
        let mw = try AtomicFileWriter(path: tmp + "/manifest.json")
        try mw.write(try manifest.encoded())
        try mw.commit()
        try FileManager.default.moveItem(atPath: tmp, toPath: final)
        done = true
        return Exported(manifest: manifest, path: final, snapshot: snapshot)
    }

    private func ndjson(_ conn: PostgresConnection, _ partition: String, _ content: String, _ name: String, _ columns: [(String, CopyToJSON.Kind)],
                        _ table: String, _ filter: String, _ dir: String, utf8: Bool) throws -> ArchiveManifest.File {
        let w = try AtomicFileWriter(path: dir + "/" + name)
        var hash = SHA256()
        w.observer = { hash.update($0) }
        let z = try ZstdCompressor(settings: settings)
        let buf = ByteBuffer(capacity: ArchiveExporter.blockSize + (1 << 16))
        var raw: Int64 = 0
        // Text as UTF-8 whatever the database's encoding: in a database that is not UTF-8 the
        // text columns are sent as convert_to(..., 'UTF8') bytes, so the NDJSON never depends
        // on how a send function treats encodings (tested on a LATIN1 database).
        let cols = columns.map { utf8 || $0.1 != .text ? $0.0 : "convert_to(\($0.0), 'UTF8') AS \($0.0)" }.joined(separator: ", ")
        let phase = "export: \(content)"
        // The planner's row estimate of the range's partition of this table, for a percentage
        // (receipts_pYYYYMMDD for messages_pYYYYMMDD; none when receipts are partitioned otherwise).
        let own = content == "messages" ? partition : content + "_" + partition.dropFirst("messages_".count)
        let estimate = Progress.isActive
            ? try conn.queryOne("SELECT greatest(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = to_regclass(\("chat." + own))")?.decode(Int64?.self, "n")
            : nil
        var seen: Int64 = 0
        func flush() throws {
            raw += Int64(buf.count)
            try z.compress(buf.bytes) { try w.write($0) }
            buf.clear()
        }
        let query = "SELECT \(cols) FROM \(table) WHERE \(filter) ORDER BY conversation_id, message_id\(content == "receipts" ? ", recipient_id, sent_at" : "")"
        // Binary COPY: the server formats no timestamp (see BinaryCopyToJSON).
        var conv = BinaryCopyToJSON(columns: columns)
        var built = 0
        let rows = try conn.copyOut(SQL(unsafeRaw: "COPY (\(query)) TO STDOUT (FORMAT binary)")) { message in
            let n = try conv.append(message: message, to: buf)
            built += n
            seen += Int64(n)
            if buf.count >= ArchiveExporter.blockSize {
                Progress.report(phase, done: seen, total: estimate, unit: "rows")
                try flush()
            }
        }
        guard built == rows else { throw ArchiveError("\(content): the server sent \(rows) rows, \(built) were read; nothing archived") }
        try flush()
        try z.finish { try w.write($0) }
        try w.commit()
        return ArchiveManifest.File(name: name, content: content, rows: rows, bytes: w.bytesWritten, uncompressedBytes: raw, sha256: hash.finalize().hex)
    }

    /// NDJSON is handed to the compressor in blocks of this size (its workers' job size).
    static let blockSize = 1 << 20

    /// Whether the database's encoding is UTF-8 (otherwise text columns are selected through convert_to).
    static func serverIsUTF8(_ conn: PostgresConnection) throws -> Bool {
        try conn.scalar(String.self, "SELECT current_setting('server_encoding')") == "UTF8"
    }

    /// The media referenced by the range's messages: each distinct content once, as its own zstd
    /// frame (zstd stores incompressible content in raw blocks), plus an NDJSON index with the
    /// frame's offset and length for every (conversation, sha256).
    private func mediaPack(_ conn: PostgresConnection, messages: String, range: String, dir: String, utf8: Bool) throws -> [ArchiveManifest.File] {
        let pack = try AtomicFileWriter(path: dir + "/media.pack.zst")
        var packHash = SHA256()
        pack.observer = { packHash.update($0) }
        let index = try AtomicFileWriter(path: dir + "/media.index.ndjson.zst")
        var indexHash = SHA256()
        index.observer = { indexHash.update($0) }
        let iz = try ZstdCompressor(settings: ZstdSettings(level: 3))
        var offsets: [String: (Int64, Int64)] = [:]
        var items = 0, indexRows = 0
        var raw: Int64 = 0, indexRaw: Int64 = 0
        var offset: Int64 = 0
        // One streamed query, ordered for a stable pack: a row (with its bytes) at a time, so
        // memory is one item's. Content shared by several conversations is packed once.
        func text(_ c: String) -> String { utf8 ? "md." + c : "convert_to(md.\(c), 'UTF8')" }
        var sawHeader = false
        _ = try conn.copyOut(SQL(unsafeRaw: """
            COPY (SELECT md.conversation_id, md.sha256, md.size_bytes, \(text("mime_type")), \(text("file_name")), \(text("encoding")),
                         \(text("external_uri")), md.bytes
                  FROM chat.media md
                  WHERE (md.conversation_id, md.sha256) IN (SELECT DISTINCT conversation_id, media_sha256 FROM \(messages) WHERE \(range) AND media_sha256 IS NOT NULL)
                  ORDER BY md.conversation_id, md.sha256) TO STDOUT (FORMAT binary)
            """)) { message in
            try BinaryCopyToJSON.rows(of: message, sawHeader: &sawHeader) { f in
                let cv = try BinaryCopyToJSON.int64(f[0])
                let sha = String(decoding: (f[1] ?? UnsafeRawBufferPointer(start: nil, count: 0)).flatMap { [BinaryCopyToJSON.hex($0 >> 4), BinaryCopyToJSON.hex($0 & 15)] }, as: UTF8.self)
                let encoding = BinaryCopyToJSON.text(f[5]) ?? "none"
                var entry: [String: Any] = [
                    "conversation_id": cv, "sha256": sha, "size_bytes": try BinaryCopyToJSON.int64(f[2]),
                    "mime_type": BinaryCopyToJSON.text(f[3]) ?? "", "encoding": encoding,
                ]
                if let name = BinaryCopyToJSON.text(f[4]) { entry["file_name"] = name }
                if let uri = BinaryCopyToJSON.text(f[6]) { entry["external_uri"] = uri }
                if let stored = f[7] {
                    if let (o, l) = offsets[sha] {
                        entry["offset"] = o; entry["length"] = l
                    } else {
                        let content = encoding == "zstd" ? try Zstd.decompress([UInt8](stored)) : [UInt8](stored)
                        guard SHA256.hash(content).hex == sha else {
                            throw ArchiveError("media \(cv):\(sha) in the database does not match its sha256; not archived")
                        }
                        let frame = try Zstd.compress(content, settings: ZstdSettings(level: 3))
                        try pack.write(frame)
                        offsets[sha] = (offset, Int64(frame.count))
                        entry["offset"] = offset; entry["length"] = Int64(frame.count)
                        offset += Int64(frame.count)
                        raw += Int64(content.count)
                        items += 1
                    }
                }
                let line = Array(try JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys])) + [10]
                indexRaw += Int64(line.count)
                try iz.compress(line) { try index.write($0) }
                indexRows += 1
            }
        }
        if items == 0 {
            // An empty pack is still a valid zstd file: one empty frame.
            let empty = try Zstd.compress([])
            try pack.write(empty)
        }
        try iz.finish { try index.write($0) }
        try pack.commit()
        try index.commit()
        return [
            ArchiveManifest.File(name: "media.index.ndjson.zst", content: "media_index", rows: indexRows, bytes: index.bytesWritten,
                                 uncompressedBytes: indexRaw, sha256: indexHash.finalize().hex),
            ArchiveManifest.File(name: "media.pack.zst", content: "media_pack", rows: items, bytes: pack.bytesWritten,
                                 uncompressedBytes: raw, sha256: packHash.finalize().hex),
        ]
    }
}
