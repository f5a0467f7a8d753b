import ChatStorePostgres
import ChatStoreZstd
import Foundation

/// Bulk movement of rows between files and tables through COPY, streamed with bounded memory.
public enum TableTransfer {
    /// What a transfer did.
    public struct Stats: Codable, Sendable {
        public var rows: Int
        /// Uncompressed COPY text bytes.
        public var bytes: Int64
        /// Bytes in the file (compressed size for `.zst`).
        public var fileBytes: Int64
        public var seconds: Double
        public var rowsPerSecond: Double { seconds > 0 ? Double(rows) / seconds : 0 }
    }

    /// Loads a COPY-text file (plain, or zstd-compressed when the name ends in `.zst`) into a
    /// table in one COPY: either every row is loaded or none.
    /// - Parameters:
    ///   - table: target table (quoted as an identifier; `schema.table` is split on the dot).
    ///   - columns: column list, or empty for all columns in order.
    /// - Throws: `PostgresError` with the server's message (which names the line), `ZstdError`.
    public static func load(connection: PostgresConnection, table: String, columns: [String] = [], path: String,
                            progress: ((Int64) -> Void)? = nil) throws -> Stats {
        let start = Date()
        var bytes: Int64 = 0
        var fileBytes: Int64 = 0
        let target = qualifiedName(table, connection)
        let cols = columns.isEmpty ? "" : " (" + columns.map(connection.quoteIdentifier).joined(separator: ", ") + ")"
        let rows = try connection.copyIn(SQL(unsafeRaw: "COPY \(target)\(cols) FROM STDIN"), flushThreshold: 1 << 16) { w in
            if path.hasSuffix(".zst") {
                let d = try ZstdDecompressor()
                try FileChunks.read(path: path) { chunk in
                    fileBytes += Int64(chunk.count)
                    try d.decompress(chunk) { out in
                        bytes += Int64(out.count)
                        try w.writeRaw(out)
                    }
                    progress?(fileBytes)
                }
                do { try d.finish() } catch var e as ZstdError { e.path = path; throw e }
            } else {
                try FileChunks.read(path: path, chunkSize: 1 << 16) { chunk in
                    bytes += Int64(chunk.count)
                    try w.writeRaw(chunk)
                    progress?(bytes)
                }
                fileBytes = bytes
            }
        }
        return Stats(rows: rows, bytes: bytes, fileBytes: fileBytes, seconds: Date().timeIntervalSince(start))
    }

    /// Runs `COPY (query) TO STDOUT` and writes the rows zstd-compressed to `path` (or plain when
    /// `compression` is nil). The file appears under its name only when complete.
    public static func export(connection: PostgresConnection, query: String, path: String,
                              compression: ZstdSettings? = ZstdSettings(level: 3, workers: 1, jobSize: 1 << 20),
                              progress: ((Int) -> Void)? = nil) throws -> Stats {
        let start = Date()
        let file = try AtomicFileWriter(path: path)
        var bytes: Int64 = 0
        var batch: [UInt8] = []
        let batchSize = 1 << 20
        batch.reserveCapacity(batchSize + 65536)
        let compressor = try compression.map { try ZstdCompressor(settings: $0) }
        func emit(_ data: UnsafeRawBufferPointer) throws {
            if let compressor { try compressor.compress(data) { try file.write($0) } } else { try file.write(data) }
        }
        var rowsSeen = 0
        let rows = try connection.copyOut(SQL(unsafeRaw: "COPY (\(query)) TO STDOUT")) { chunk in
            bytes += Int64(chunk.count)
            batch.append(contentsOf: chunk)
            rowsSeen += 1
            if batch.count >= batchSize {
                try batch.withUnsafeBytes { try emit($0) }
                batch.removeAll(keepingCapacity: true)
                progress?(rowsSeen)
            }
        }
        try batch.withUnsafeBytes { try emit($0) }
        if let compressor { try compressor.finish { try file.write($0) } }
        try file.commit()
        return Stats(rows: rows, bytes: bytes, fileBytes: file.bytesWritten, seconds: Date().timeIntervalSince(start))
    }

    static func qualifiedName(_ name: String, _ c: PostgresConnection) -> String {
        name.split(separator: ".", maxSplits: 1).map { c.quoteIdentifier(String($0)) }.joined(separator: ".")
    }
}
