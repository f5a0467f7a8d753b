import ChatStorePostgres
import ChatStoreZstd
import Foundation
import Logging

/// Loads an archive back: re-creates the partition range if needed, then media, messages and
/// receipts with ON CONFLICT DO NOTHING, in one transaction, so restoring twice changes nothing.
/// The archive is verified first: its manifest, file list and media before anything is written;
/// the messages and receipts files while they are loaded (sha256, zstd frames, uncompressed size
/// and rows, each against the manifest), so each is read once. A file that does not match fails
/// the restore, and its transaction leaves the database as it was.
public struct ArchiveRestorer {
    public let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    public struct Report: Codable, Sendable {
        public var partition: String
        public var messages: Int
        public var receipts: Int
        public var media: Int
        public var messagesAdded: Int
        public var receiptsAdded: Int
        public var mediaAdded: Int
    }

    public func restore(path: String, into conn: PostgresConnection) throws -> Report {
        let check = try ArchiveVerifier().verify(path: path, connection: nil, deferring: Self.verifiedWhileLoading)
        guard check.ok else { throw ArchiveError("refusing to restore a damaged archive:\n  " + check.problems.joined(separator: "\n  ")) }
        let manifest = try JSONDecoder().decode(ArchiveManifest.self, from: Data(contentsOf: URL(fileURLWithPath: path + "/manifest.json")))
        // The range's lock before anything of the range is read or written in the database.
        return try RangeLock.with(conn, partition: manifest.partition, waiting: lockWait) { try restoreLocked(path: path, manifest: manifest, into: conn) }
    }

    /// The files checked while they are loaded rather than in a pass of their own.
    static let verifiedWhileLoading: Set<String> = ["messages.ndjson.zst", "receipts.ndjson.zst"]

    /// How long to wait for the range's lock when another command holds it.
    public var lockWait: Duration = RangeLock.defaultWait

    private func restoreLocked(path: String, manifest: ArchiveManifest, into conn: PostgresConnection) throws -> Report {
        guard let lo = PostgresTimestamp.parse(manifest.rangeStart), let hi = PostgresTimestamp.parse(manifest.rangeEnd) else {
            throw ArchiveError("\(path)/manifest.json: bad range")
        }
        // The archive must be one the ledger recorded for its range, when the ledger knows the range.
        let manifestSHA = SHA256.hash([UInt8](try Data(contentsOf: URL(fileURLWithPath: path + "/manifest.json")))).hex
        let recorded = try conn.query("""
            SELECT path, manifest_sha256 FROM chat.archives
            WHERE parent_table = 'messages' AND range_start = \(lo) AND range_end = \(hi) AND verified_at IS NOT NULL
            ORDER BY archive_id
            """).map { (try $0.decode(String.self, "path"), try $0.decode(String.self, "manifest_sha256")) }
        if !recorded.isEmpty && !recorded.contains(where: { $0.1 == manifestSHA }) {
            throw ArchiveError("\(path)/manifest.json (sha256 \(manifestSHA)) is not the manifest the ledger recorded for \(manifest.partition): "
                + recorded.map { "\($0.0) has \($0.1)" }.joined(separator: "; ") + ". Restore the archive the ledger names, or find out who changed this one")
        }
        // Only the range's current archive (the last one verified): an older one was superseded
        // by an archive written after the range changed, and would bring back an old state.
        if let current = recorded.last, current.1 != manifestSHA {
            throw ArchiveError("\(path) is an older archive of \(manifest.partition), superseded by \(current.0) (written after the range changed); restore that one")
        }
        var report = Report(partition: manifest.partition, messages: 0, receipts: 0, media: 0, messagesAdded: 0, receiptsAdded: 0, mediaAdded: 0)
        // One transaction, the range's partitions included: a restore that fails leaves the
        // database as it was.
        try conn.transaction { c in
            // The archive's range becomes one partition of messages and one of receipts, with the
            // range the archive was written with, whatever granularity is configured now (refused,
            // before anything is created, when other partitions overlap it).
            let pm = PartitionManager(logger: logger)
            let m = try pm.ensureExactly(c, parent: "messages", from: lo, to: hi)
            let r = try pm.ensureExactly(c, parent: "receipts", from: lo, to: hi)
            let receiptsPartition = r.name
            // When this transaction created the range's messages and receipts partitions, no row
            // of the archive can exist yet: its rows go straight into them by COPY, with no
            // staging or upsert (a row outside the range fails the COPY, and the restore with it).
            let direct = m.created && r.created && m.name == manifest.partition
            try c.execute("CREATE TEMP TABLE IF NOT EXISTS restore_messages (LIKE chat.messages INCLUDING DEFAULTS)")
            try c.execute("CREATE TEMP TABLE IF NOT EXISTS restore_receipts (LIKE chat.receipts INCLUDING DEFAULTS)")
            try c.execute("CREATE TEMP TABLE IF NOT EXISTS restore_media (LIKE chat.media)")
            try c.execute("TRUNCATE restore_messages, restore_receipts, restore_media")
            // Media: index lines with their bytes from the pack.
            var index: [UInt8] = []
            try ZstdDecompressor.decompressFile(path: path + "/media.index.ndjson.zst") { index.append(contentsOf: $0) }
            let pack = FileHandle(forReadingAtPath: path + "/media.pack.zst")
            defer { try? pack?.close() }
            report.media = try c.copyIn("COPY restore_media (conversation_id, sha256, size_bytes, mime_type, file_name, encoding, bytes, external_uri, created_at) FROM STDIN") { w in
                for (n, line) in index.split(separator: 10).enumerated() {
                    let at = "\(path)/media.index.ndjson.zst:\(n + 1)"
                    guard let o = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else { throw ArchiveError("\(at): not a JSON object") }
                    guard let conversation = o["conversation_id"] as? NSNumber else {
                        throw ArchiveError("\(at): conversation_id must be an integer")
                    }
                    guard let shaHex = o["sha256"] as? String, let sha = hexBytes(shaHex), sha.count == 32 else { throw ArchiveError("\(at): sha256 must be 64 hex digits") }
                    guard let size = o["size_bytes"] as? NSNumber, size.int64Value >= 0 else { throw ArchiveError("\(at): size_bytes must be a non-negative integer") }
                    w.append(conversation.int64Value)
                    w.appendBytea(sha)
                    w.append(size.int64Value)
                    w.append(o["mime_type"] as? String ?? "application/octet-stream")
                    w.append(o["file_name"] as? String)
                    let encoding = o["encoding"] as? String ?? "none"
                    w.append(encoding)
                    if let off = (o["offset"] as? NSNumber)?.int64Value, let len = (o["length"] as? NSNumber)?.int64Value {
                        guard off >= 0, len >= 0, len <= 1 << 32 else { throw ArchiveError("\(at): offset \(off) and length \(len) do not name a place in the pack") }
                        try pack?.seek(toOffset: UInt64(off))
                        let content = try Zstd.decompress([UInt8](pack?.readData(ofLength: Int(len)) ?? Data()))
                        // Stored as it was: zstd-compressed content is compressed again with the same settings.
                        w.appendBytea(encoding == "zstd" ? try Zstd.compress(content) : content)
                    } else { w.appendNull() }
                    w.append(o["external_uri"] as? String)
                    w.appendTimestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1e6))
                    try w.endRow()
                }
            }
            report.mediaAdded = try c.executeCountingRows("INSERT INTO chat.media SELECT * FROM restore_media ON CONFLICT DO NOTHING")
            if direct {
                report.messages = try load(c, path + "/messages.ndjson.zst", "chat." + c.quoteIdentifier(manifest.partition), ArchiveExporter.messageColumns, manifest)
                report.receipts = try load(c, path + "/receipts.ndjson.zst", "chat." + c.quoteIdentifier(receiptsPartition), ArchiveExporter.receiptColumns, manifest)
                report.messagesAdded = report.messages
                report.receiptsAdded = report.receipts
            } else {
                report.messages = try load(c, path + "/messages.ndjson.zst", "restore_messages", ArchiveExporter.messageColumns, manifest)
                report.receipts = try load(c, path + "/receipts.ndjson.zst", "restore_receipts", ArchiveExporter.receiptColumns, manifest)
                report.messagesAdded = try c.executeCountingRows("INSERT INTO chat.messages SELECT * FROM restore_messages ON CONFLICT DO NOTHING")
                report.receiptsAdded = try c.executeCountingRows("INSERT INTO chat.receipts SELECT * FROM restore_receipts ON CONFLICT DO NOTHING")
            }
            // The ledger: the range is live again (its archives stay, verified, for the record).
            try c.execute("""
                UPDATE chat.archives SET restored_at = now()
                WHERE parent_table = 'messages' AND range_start = \(lo) AND range_end = \(hi) AND detached_at IS NOT NULL AND restored_at IS NULL
                """)
        }
        return report
    }

    /// Streams an NDJSON file into a table through COPY, verifying it against its manifest entry
    /// in the same pass (sha256 and size of the file, zstd frame checksums, uncompressed size,
    /// rows); a mismatch throws, after the rows were sent, so the caller's transaction rolls back.
    private func load(_ c: PostgresConnection, _ file: String, _ table: String, _ columns: [(String, CopyToJSON.Kind)],
                      _ manifest: ArchiveManifest) throws -> Int {
        let name = URL(fileURLWithPath: file).lastPathComponent
        guard let entry = manifest.files.first(where: { $0.name == name }) else { throw ArchiveError("\(file): not listed in the manifest") }
        let damaged = { (problem: String) in ArchiveError("refusing to restore a damaged archive:\n  \(file): \(problem); nothing was restored") }
        let rows: Int
        let reader = ArchiveFileReader(path: file)
        do {
            defer { reader.close() }
            rows = try copyRows(c, file, table, columns, reader)
        } catch {
            // Damage shows first as a zstd or JSON error: say it is damage when the file does not
            // match its sha256.
            var h = SHA256()
            try? FileChunks.read(path: file) { h.update($0) }
            if h.finalize().hex != entry.sha256 { throw damaged("sha256 \(h.finalize().hex) does not match the manifest's \(entry.sha256) (\(error))") }
            throw error
        }
        let size = reader.compressedBytes, raw = reader.uncompressedBytes
        if size != entry.bytes { throw damaged("\(size) bytes, manifest says \(entry.bytes) (truncated or extended)") }
        let digest = reader.hash.finalize().hex
        if digest != entry.sha256 { throw damaged("sha256 \(digest) does not match the manifest's \(entry.sha256)") }
        if raw != entry.uncompressedBytes { throw damaged("\(raw) bytes uncompressed, manifest says \(entry.uncompressedBytes)") }
        if rows != entry.rows { throw damaged("\(rows) rows, manifest says \(entry.rows)") }
        return rows
    }

    private func copyRows(_ c: PostgresConnection, _ file: String, _ table: String, _ columns: [(String, CopyToJSON.Kind)],
                          _ reader: ArchiveFileReader) throws -> Int {
        try c.copyIn(SQL(unsafeRaw: "COPY \(table) (\(columns.map(\.0).joined(separator: ", "))) FROM STDIN")) { w in
            var pending: [UInt8] = []
            var lineNo = 0
            let fast = NDJSONToCopy(columns: columns)
            var converted: [UInt8] = []
            converted.reserveCapacity(1 << 16)
            func row(_ line: ArraySlice<UInt8>) throws {
                lineNo += 1
                // Lines as the exporter writes them go straight to COPY text; others are parsed.
                if line.withUnsafeBytes({ fast.convert($0, into: &converted) }) {
                    if converted.count >= 1 << 16 {
                        try converted.withUnsafeBytes { try w.writeRaw($0) }
                        converted.removeAll(keepingCapacity: true)
                    }
                    return
                }
                if !converted.isEmpty {
                    try converted.withUnsafeBytes { try w.writeRaw($0) }
                    converted.removeAll(keepingCapacity: true)
                }
                let obj = try line.withUnsafeBytes { raw -> FlatObject in
                    do { return try FlatJSON.parse(raw) } catch { throw ArchiveError("\(file): line \(lineNo): \(error)") }
                }
                for (name, kind) in columns {
                    switch obj[name] ?? .null {
                    case .null: w.appendNull()
                    case .number(let s): w.appendRawField(Array(s.utf8))
                    case .bool(let b): w.append(b)
                    case .string(let s):
                        if kind == .bytea { w.appendRawField(Array("\\\\x".utf8) + Array(s.utf8)) } else { w.append(s) }
                    case .nested: throw ArchiveError("\(file): line \(lineNo): field \(name) is not a scalar")
                    }
                }
                try w.endRow()
            }
            let phase = "restore: \(URL(fileURLWithPath: file).lastPathComponent)"
            var raw: Int64 = 0
            while let chunk = try reader.take() {
                raw += Int64(chunk.count)
                Progress.report(phase, done: raw, total: nil, unit: "bytes")
                pending.append(contentsOf: chunk)
                var start = pending.startIndex
                while let nl = pending[start...].firstIndex(of: 10) {
                    try row(pending[start..<nl])
                    start = nl + 1
                }
                pending.removeSubrange(pending.startIndex..<start)
            }
            if !pending.isEmpty { try row(pending[...]) }
            if !converted.isEmpty { try converted.withUnsafeBytes { try w.writeRaw($0) } }
        }
    }
}
