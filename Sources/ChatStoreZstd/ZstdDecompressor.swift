import CChatStoreZstd
import Foundation

/// Streaming zstd decompression with bounded memory. Concatenated frames and skippable frames are
/// read in sequence; checksums are verified; input that ends inside a frame is an error.
///
/// ```swift
/// let d = try ZstdDecompressor()
/// try d.decompress(chunk) { out in ... }
/// try d.finish()   // throws `.truncated` if the last frame is incomplete
/// ```
public final class ZstdDecompressor {
    private let dctx: OpaquePointer
    private var outBuffer: [UInt8]
    /// Compressed bytes consumed so far.
    public private(set) var bytesIn: Int64 = 0
    /// Decompressed bytes produced so far.
    public private(set) var bytesOut: Int64 = 0
    /// Frames completed so far.
    public private(set) var framesCompleted = 0
    private var inFrame = false
    private var sawInput = false

    /// Creates a decompressor.
    /// - Parameters:
    ///   - dictionary: the dictionary the data was compressed with, if any.
    ///   - maxWindowLog: largest window accepted (27 by default, as the CLI; raise for `--long` data).
    public init(dictionary: ZstdDictionary? = nil, maxWindowLog: Int32 = 31) throws {
        guard let d = ZSTD_createDCtx() else { throw ZstdError(kind: .library, message: "out of memory creating a decompression context") }
        dctx = d
        outBuffer = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
        try ZstdError.check(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, maxWindowLog), "setting windowLogMax")
        if let dictionary {
            try dictionary.bytes.withUnsafeBytes { raw in
                try ZstdError.check(ZSTD_DCtx_loadDictionary(dctx, raw.baseAddress, raw.count), "loading dictionary")
            }
        }
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// Decompresses a chunk of compressed input; output goes to `sink` as it is produced.
    /// - Throws: `ZstdError` (`.corrupt`, `.checksum`, ...) with the compressed offset reached.
    public func decompress(_ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        if input.count > 0 { sawInput = true }
        var inb = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let cap = outBuffer.count
        while inb.pos < inb.size || inFrame {
            let before = inb.pos
            let (ret, produced) = try outBuffer.withUnsafeMutableBytes { out -> (Int, Int) in
                var outb = ZSTD_outBuffer(dst: out.baseAddress, size: cap, pos: 0)
                let r = ZSTD_decompressStream(dctx, &outb, &inb)
                if ZSTD_isError(r) != 0 {
                    var e = ZstdError.from(r, "decompressing")
                    e.offset = bytesIn + Int64(inb.pos)
                    throw e
                }
                if outb.pos > 0 { try sink(UnsafeRawBufferPointer(rebasing: out[0..<outb.pos])) }
                return (r, outb.pos)
            }
            bytesOut += Int64(produced)
            if ret == 0 {
                if inFrame || inb.pos > before { framesCompleted += 1 }
                inFrame = false
            } else {
                inFrame = true
            }
            // Need more input and none left: stop; output buffer was not full so nothing pending.
            if inb.pos == inb.size && produced < cap { break }
        }
        bytesIn += Int64(input.count)
    }

    /// Decompresses bytes from an array.
    public func decompress(_ input: [UInt8], sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try input.withUnsafeBytes { try decompress($0, sink: sink) }
    }

    /// Declares the end of input.
    /// - Throws: `.truncated` when the input ended inside a frame, `.corrupt` when there was no input.
    public func finish() throws {
        if inFrame {
            throw ZstdError(kind: .truncated, message: "input ends inside a zstd frame (truncated)", offset: bytesIn)
        }
        if !sawInput {
            throw ZstdError(kind: .corrupt, message: "empty input: no zstd frame", offset: 0)
        }
    }
}

/// One-shot helpers for small buffers.
public enum Zstd {
    /// The libzstd version string (`1.5.4`).
    public static var libraryVersion: String { String(cString: ZSTD_versionString()) }

    /// Compresses a buffer into one frame.
    public static func compress(_ data: [UInt8], settings: ZstdSettings = ZstdSettings(), dictionary: ZstdDictionary? = nil) throws -> [UInt8] {
        let c = try ZstdCompressor(settings: settings, dictionary: dictionary)
        var out: [UInt8] = []
        try c.compress(data) { out.append(contentsOf: $0) }
        try c.finish { out.append(contentsOf: $0) }
        return out
    }

    /// Decompresses a buffer holding one or more complete frames.
    public static func decompress(_ data: [UInt8], dictionary: ZstdDictionary? = nil) throws -> [UInt8] {
        let d = try ZstdDecompressor(dictionary: dictionary)
        var out: [UInt8] = []
        try d.decompress(data) { out.append(contentsOf: $0) }
        try d.finish()
        return out
    }
}
