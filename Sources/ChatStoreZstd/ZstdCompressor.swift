import CChatStoreZstd
import Foundation

/// Settings for compression. Defaults match the `zstd` CLI: level 3 with a frame checksum.
public struct ZstdSettings: Sendable, Equatable {
    /// Compression level (1...19, or up to 22 with `ultra` window sizes; negative for fast modes).
    public var level: Int32 = 3
    /// Write a 32-bit content checksum at the end of each frame (verified on decompression).
    public var checksum = true
    /// Worker threads for compression (0: compress in the calling thread).
    public var workers: Int32 = 0
    /// Long-distance matching (helps on large inputs with far repeats).
    public var longDistanceMatching = false
    /// log2 of the window size (nil: the level's default). Readers need `--long=N` above 27.
    public var windowLog: Int32?
    /// Size of each worker's job in bytes (nil: libzstd's default, 4x the window). Smaller jobs
    /// use less memory at a slight cost in ratio.
    public var jobSize: Int32?

    public init(level: Int32 = 3, checksum: Bool = true, workers: Int32 = 0,
                longDistanceMatching: Bool = false, windowLog: Int32? = nil, jobSize: Int32? = nil) {
        self.jobSize = jobSize
        self.level = level
        self.checksum = checksum
        self.workers = workers
        self.longDistanceMatching = longDistanceMatching
        self.windowLog = windowLog
    }
}

/// Streaming zstd compression into a sink, with bounded memory.
///
/// ```swift
/// let c = try ZstdCompressor(settings: ZstdSettings(level: 3, workers: 2))
/// try c.compress(chunk) { out in try file.write(out) }
/// try c.finish { out in try file.write(out) }
/// ```
public final class ZstdCompressor {
    private let cctx: OpaquePointer
    private var outBuffer: [UInt8]
    /// Uncompressed bytes consumed so far.
    public private(set) var bytesIn: Int64 = 0
    /// Compressed bytes produced so far.
    public private(set) var bytesOut: Int64 = 0
    private var cdict: OpaquePointer?

    /// Creates a compressor.
    /// - Parameters:
    ///   - settings: level, checksum, workers, long-distance mode, window.
    ///   - dictionary: an optional trained dictionary (the reader needs the same one).
    /// - Throws: `ZstdError` when a parameter is refused by libzstd.
    public init(settings: ZstdSettings = ZstdSettings(), dictionary: ZstdDictionary? = nil) throws {
        guard let c = ZSTD_createCCtx() else { throw ZstdError(kind: .library, message: "out of memory creating a compression context") }
        cctx = c
        outBuffer = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        try set(ZSTD_c_compressionLevel, settings.level, "level \(settings.level)")
        try set(ZSTD_c_checksumFlag, settings.checksum ? 1 : 0, "checksum flag")
        if settings.workers > 0 { try set(ZSTD_c_nbWorkers, settings.workers, "nbWorkers \(settings.workers)") }
        if settings.longDistanceMatching { try set(ZSTD_c_enableLongDistanceMatching, 1, "long-distance matching") }
        if let w = settings.windowLog { try set(ZSTD_c_windowLog, w, "windowLog \(w)") }
        if let j = settings.jobSize, settings.workers > 0 { try set(ZSTD_c_jobSize, j, "jobSize \(j)") }
        if let dictionary {
            try dictionary.bytes.withUnsafeBytes { raw in
                try ZstdError.check(ZSTD_CCtx_loadDictionary(cctx, raw.baseAddress, raw.count), "loading dictionary")
            }
        }
    }

    deinit { ZSTD_freeCCtx(cctx) }

    private func set(_ p: ZSTD_cParameter, _ v: Int32, _ what: String) throws {
        try ZstdError.check(ZSTD_CCtx_setParameter(cctx, p, v), "setting \(what)")
    }

    /// Compresses a chunk; compressed output is handed to `sink` as it is produced.
    public func compress(_ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        bytesIn += Int64(input.count)
        var inb = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        while inb.pos < inb.size {
            try step(&inb, ZSTD_e_continue, sink)
        }
    }

    /// Compresses bytes from an array.
    public func compress(_ input: [UInt8], sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try input.withUnsafeBytes { try compress($0, sink: sink) }
    }

    /// Ends the current frame, flushing everything. The compressor can then start a new frame.
    public func finish(sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var inb = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try step(&inb, ZSTD_e_end, sink) != 0 {}
    }

    /// Flushes buffered data without ending the frame.
    public func flush(sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var inb = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try step(&inb, ZSTD_e_flush, sink) != 0 {}
    }

    @discardableResult
    private func step(_ inb: inout ZSTD_inBuffer, _ mode: ZSTD_EndDirective, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        let cap = outBuffer.count
        return try outBuffer.withUnsafeMutableBytes { out in
            var outb = ZSTD_outBuffer(dst: out.baseAddress, size: cap, pos: 0)
            let remaining = ZSTD_compressStream2(cctx, &outb, &inb, mode)
            try ZstdError.check(remaining, "compressing")
            if outb.pos > 0 {
                bytesOut += Int64(outb.pos)
                try sink(UnsafeRawBufferPointer(rebasing: out[0..<outb.pos]))
            }
            return remaining
        }
    }
}
