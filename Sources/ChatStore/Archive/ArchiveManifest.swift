import Foundation

/// `manifest.json` of an archive directory (see docs/archive-format.md).
public struct ArchiveManifest: Codable, Sendable, Equatable {
    public struct Compression: Codable, Sendable, Equatable {
        public var codec = "zstd"
        public var level: Int32 = 3
        public var frameChecksums = true
    }

    public struct File: Codable, Sendable, Equatable {
        /// File name inside the archive directory.
        public var name: String
        /// What it holds: `messages`, `receipts` (NDJSON), `media_index` (NDJSON), `media_pack`.
        public var content: String
        /// NDJSON lines, or media items for the pack.
        public var rows: Int
        public var bytes: Int64
        public var uncompressedBytes: Int64
        public var sha256: String
    }

    public var format = "chatstore-archive"
    public var formatVersion = 1
    public var schemaVersion: Int
    public var table: String
    public var partition: String
    public var rangeStart: String
    public var rangeEnd: String
    public var files: [File]
    public var compression: Compression
    public var toolVersion: String
    public var zstdVersion: String
    public var createdAt: String

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", schemaVersion = "schema_version", table, partition
        case rangeStart = "range_start", rangeEnd = "range_end", files, compression
        case toolVersion = "tool_version", zstdVersion = "zstd_version", createdAt = "created_at"
    }

    func encoded() throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try e.encode(self)) + [10]
    }
}

extension ArchiveManifest.File {
    enum CodingKeys: String, CodingKey {
        case name, content, rows, bytes, uncompressedBytes = "uncompressed_bytes", sha256
    }
}

extension ArchiveManifest.Compression {
    enum CodingKeys: String, CodingKey { case codec, level, frameChecksums = "frame_checksums" }
}

/// An archive problem, naming the file and, when known, the offset.
public struct ArchiveError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
