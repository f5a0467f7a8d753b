import ChatStorePostgres
import ChatStoreZstd
import Foundation

/// Checks an archive directory: every file of the manifest exists and no other file does, each
/// file's sha256, each zstd frame's checksum (full decompression), NDJSON row counts, every media
/// item's content against its sha256, and, while the partition is still in the database, the
/// row counts against the database.
public struct ArchiveVerifier {
    public init() {}

    public struct Report: Codable, Sendable {
        public var path: String
        public var ok: Bool
        public var problems: [String]
        public var rows: [String: Int]
        public var checkedAgainstDatabase: Bool
    }

    /// - Parameter deferring: files whose content (sha256, zstd frames, rows) the caller checks
    ///   itself while it reads them (restore loads and verifies in one pass); here they are only
    ///   checked to be present with the manifest's size.
    public func verify(path: String, connection: PostgresConnection?, deferring: Set<String> = []) throws -> Report {
        var problems: [String] = []
        var rows: [String: Int] = [:]
        let manifestPath = path + "/manifest.json"
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            return Report(path: path, ok: false, problems: ["\(manifestPath): missing"], rows: [:], checkedAgainstDatabase: false)
        }
        let manifest: ArchiveManifest
        do { manifest = try JSONDecoder().decode(ArchiveManifest.self, from: data) } catch {
            return Report(path: path, ok: false, problems: ["\(manifestPath): not a chatstore archive manifest (\(error))"], rows: [:], checkedAgainstDatabase: false)
        }
        problems += ArchiveVerifier.manifestProblems(manifest, at: manifestPath)
        let present = Set((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
        let expected = Set(manifest.files.map(\.name) + ["manifest.json"])
        for extra in present.subtracting(expected).sorted() { problems.append("\(path)/\(extra): not listed in the manifest") }
        for f in manifest.files {
            let fp = path + "/" + f.name
            guard present.contains(f.name) else { problems.append("\(fp): missing"); continue }
            if deferring.contains(f.name) {
                let size = ((try? FileManager.default.attributesOfItem(atPath: fp))?[.size] as? NSNumber)?.int64Value ?? -1
                if size != f.bytes { problems.append("\(fp): \(size) bytes, manifest says \(f.bytes) (truncated or extended)") }
                continue
            }
            // One pass over the file: sha256 of the bytes as stored, zstd frames (each frame's
            // checksum) and line counts as they decompress.
            var h = SHA256()
            var size: Int64 = 0
            var lines = 0
            var raw: Int64 = 0
            let phase = "verify: \(f.name)"
            let countLines = f.content != "media_pack"
            func sizeAndHash() {
                if size != f.bytes { problems.append("\(fp): \(size) bytes, manifest says \(f.bytes) (truncated or extended)") }
                if h.finalize().hex != f.sha256 { problems.append("\(fp): sha256 \(h.finalize().hex) does not match the manifest's \(f.sha256)") }
            }
            do {
                try ZstdDecompressor.decompressFile(path: fp, compressed: { h.update($0); size += Int64($0.count) }) { chunk in
                    raw += Int64(chunk.count)
                    Progress.report(phase, done: raw, total: f.uncompressedBytes, unit: "bytes")
                    if countLines { lines += ArchiveVerifier.newlines(chunk) }
                }
            } catch let e as ZstdError where e.kind != .io {
                // Damaged: the rest of the file is hashed too, for the sha256 and size findings.
                h = SHA256(); size = 0
                try? FileChunks.read(path: fp) { h.update($0); size += Int64($0.count) }
                sizeAndHash()
                problems.append("\(fp): damaged zstd data: \(e.message)\(e.offset.map { " at byte \($0)" } ?? "")")
                continue
            } catch {
                problems.append("\(fp): \(error)"); continue
            }
            sizeAndHash()
            if raw != f.uncompressedBytes { problems.append("\(fp): \(raw) bytes uncompressed, manifest says \(f.uncompressedBytes)") }
            if f.content != "media_pack" {
                rows[f.content] = lines
                if lines != f.rows { problems.append("\(fp): \(lines) rows, manifest says \(f.rows)") }
            }
        }
        // Every media item decompresses on its own and matches its sha256; the pack holds as
        // many items as the index names distinct places in it (media kept elsewhere, with an
        // external_uri, have no place in the pack; content shared by conversations has one).
        if problems.isEmpty, let idx = manifest.files.first(where: { $0.content == "media_index" }) {
            var text: [UInt8] = []
            try ZstdDecompressor.decompressFile(path: path + "/" + idx.name) { text.append(contentsOf: $0) }
            let pack = FileHandle(forReadingAtPath: path + "/media.pack.zst")
            defer { try? pack?.close() }
            var places = Set<Int64>()
            for (n, line) in text.split(separator: 10).enumerated() {
                guard let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    problems.append("\(path)/\(idx.name): line \(n + 1) is not JSON"); continue
                }
                guard let off = (o["offset"] as? NSNumber)?.int64Value, let len = (o["length"] as? NSNumber)?.int64Value, let sha = o["sha256"] as? String else { continue }
                guard off >= 0, len >= 0, len <= 1 << 32 else {
                    problems.append("\(path)/\(idx.name): line \(n + 1): offset \(off) and length \(len) do not name a place in the pack"); continue
                }
                places.insert(off)
                do {
                    try pack?.seek(toOffset: UInt64(off))
                    let frame = [UInt8](pack?.readData(ofLength: Int(len)) ?? Data())
                    let content = try Zstd.decompress(frame)
                    if SHA256.hash(content).hex != sha { problems.append("\(path)/media.pack.zst: item at offset \(off) does not match sha256 \(sha)") }
                } catch {
                    problems.append("\(path)/media.pack.zst: item at offset \(off) (length \(len)) is damaged: \(error)")
                }
            }
            if let packFile = manifest.files.first(where: { $0.content == "media_pack" }), packFile.rows != places.count {
                problems.append("\(manifestPath): the media pack is said to hold \(packFile.rows) items, its index names \(places.count)")
            }
        }
        // Against the database, while the partition is still there.
        var checkedDB = false
        if let conn = connection, try conn.scalar(Bool.self, """
            SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(\("chat." + manifest.partition)) AND inhparent = 'chat.messages'::regclass)
            """) {
            checkedDB = true
            let lo = manifest.rangeStart, hi = manifest.rangeEnd
            let m = try conn.scalar(Int.self, "SELECT count(*) FROM chat.messages WHERE sent_at >= \(lo)::timestamptz AND sent_at < \(hi)::timestamptz")
            let r = try conn.scalar(Int.self, "SELECT count(*) FROM chat.receipts WHERE sent_at >= \(lo)::timestamptz AND sent_at < \(hi)::timestamptz")
            if let a = rows["messages"], a != m { problems.append("\(path): \(a) messages archived, the database holds \(m) for the range") }
            if let a = rows["receipts"], a != r { problems.append("\(path): \(a) receipts archived, the database holds \(r) for the range") }
        }
        return Report(path: path, ok: problems.isEmpty, problems: problems, rows: rows, checkedAgainstDatabase: checkedDB)
    }

    /// The number of `\n` bytes (memchr, which glibc vectorizes).
    static func newlines(_ chunk: UnsafeRawBufferPointer) -> Int {
        guard var p = chunk.baseAddress else { return 0 }
        let end = p + chunk.count
        var n = 0
        while p < end, let q = memchr(p, 10, end - p) {
            n += 1
            p = UnsafeRawPointer(q) + 1
        }
        return n
    }

    /// The files an archive of format version 1 holds, by content.
    static let fileNames = ["messages": "messages.ndjson.zst", "receipts": "receipts.ndjson.zst",
                            "media_index": "media.index.ndjson.zst", "media_pack": "media.pack.zst"]

    /// What is wrong with a manifest by itself (no file read): the format and versions this
    /// binary reads, the table and a partition name that matches the range, a range that is one
    /// partition of a day, an ISO week or a calendar month, and a file list with each content
    /// once under its own name, counts that are not negative, sha256 digests that are 64 hex
    /// digits. A manifest is checked, not trusted: restore reads only what it says.
    public static func manifestProblems(_ m: ArchiveManifest, at where_: String) -> [String] {
        var p: [String] = []
        if m.format != "chatstore-archive" { p.append("\(where_): format \"\(m.format.prefix(40))\" is not chatstore-archive") }
        if m.formatVersion != 1 { p.append("\(where_): format_version \(m.formatVersion) is not one this binary reads (1)") }
        let latest = (try? Migration.embedded().last?.version) ?? nil
        if m.schemaVersion < 1 || (latest.map { m.schemaVersion > $0 } ?? false) {
            p.append("\(where_): schema_version \(m.schemaVersion) is not one this binary knows (1-\(latest ?? 0))")
        }
        if m.table != "messages" { p.append("\(where_): table \"\(m.table.prefix(40))\" is not messages") }
        if m.compression.codec != "zstd" { p.append("\(where_): compression codec \"\(m.compression.codec.prefix(20))\" is not zstd") }
        if let lo = PostgresTimestamp.parse(m.rangeStart), let hi = PostgresTimestamp.parse(m.rangeEnd) {
            let fits = PartitionGranularity.allCases.contains { $0.floor(lo) == lo && $0.next(lo) == hi }
            if !fits { p.append("\(where_): range [\(m.rangeStart), \(m.rangeEnd)) is not one partition of a day, a week or a month") }
            if m.partition != "messages_" + PartitionGranularity.suffix(lo) {
                p.append("\(where_): partition \"\(m.partition.prefix(60))\" does not match the range start (messages_\(PartitionGranularity.suffix(lo)))")
            }
        } else {
            p.append("\(where_): range_start or range_end is not a timestamp")
        }
        var contents = Set<String>(), names = Set<String>()
        for f in m.files {
            if !names.insert(f.name).inserted { p.append("\(where_): file \(f.name.prefix(60)) is listed twice") }
            guard let expected = fileNames[f.content] else {
                p.append("\(where_): file \(f.name.prefix(60)) has unknown content \"\(f.content.prefix(40))\""); continue
            }
            if !contents.insert(f.content).inserted { p.append("\(where_): content \(f.content) is listed twice") }
            if f.name != expected { p.append("\(where_): the \(f.content) file is named \(f.name.prefix(60)), not \(expected)") }
            if f.rows < 0 || f.bytes < 0 || f.uncompressedBytes < 0 { p.append("\(where_): \(f.name.prefix(60)) has a negative count") }
            if f.sha256.count != 64 || !f.sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) { p.append("\(where_): \(f.name.prefix(60)) has no valid sha256") }
        }
        for c in ["messages", "receipts"] where !contents.contains(c) { p.append("\(where_): no \(c) file is listed") }
        return p
    }
}