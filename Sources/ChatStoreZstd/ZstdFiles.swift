import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file under a temporary name and renames it into place only on `commit()`, so a
/// reader never sees a half-written file under the final name. Writes are buffered.
public final class AtomicFileWriter {
    /// The final path.
    public let path: String
    /// The temporary path written until commit.
    public let temporaryPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferSize: Int
    /// Bytes written so far.
    public private(set) var bytesWritten: Int64 = 0
    private var done = false
    /// Called with every chunk actually written (to hash the file as it is written).
    public var observer: ((UnsafeRawBufferPointer) -> Void)?

    /// Creates the temporary file next to `path`.
    /// - Throws: `ZstdError` of kind `.io` naming the path.
    /// When the target exists and is not a regular file (`/dev/null`, a pipe, a terminal), it is
    /// written directly: there is nothing to rename into place.
    public init(path: String, bufferSize: Int = 1 << 20) throws {
        self.path = path
        self.bufferSize = bufferSize
        var st = stat()
        if path == "-" {
            // `-` is standard output, written as it comes (nothing to rename).
            temporaryPath = path
            isSpecial = true
            fd = dup(STDOUT_FILENO)
        } else if stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
            temporaryPath = path
            isSpecial = true
            fd = open(path, O_WRONLY | O_CLOEXEC)
        } else {
            temporaryPath = path + ".partial-\(getpid())"
            isSpecial = false
            fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }
        if fd < 0 { throw ZstdError(kind: .io, message: "cannot create: \(String(cString: strerror(errno)))", path: path) }
        buffer.reserveCapacity(bufferSize)
    }

    private let isSpecial: Bool

    deinit {
        if !done {
            close(fd)
            if !isSpecial { unlink(temporaryPath) }
        }
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > bufferSize { try drain() }
        if bytes.count >= bufferSize { try writeAll(bytes) } else { buffer.append(contentsOf: bytes) }
    }

    /// Appends bytes from an array.
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    private func drain() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        observer?(bytes)
        var off = 0
        while off < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw ZstdError(kind: .io, message: "write failed: \(String(cString: strerror(errno)))", path: temporaryPath)
            }
            off += n
        }
        bytesWritten += Int64(bytes.count)
    }

    /// Flushes, fsyncs and renames the file into place.
    public func commit() throws {
        try drain()
        if isSpecial {
            close(fd)
            done = true
            return
        }
        if fsync(fd) != 0 { throw ZstdError(kind: .io, message: "fsync failed: \(String(cString: strerror(errno)))", path: temporaryPath) }
        close(fd)
        done = true
        if rename(temporaryPath, path) != 0 {
            let msg = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw ZstdError(kind: .io, message: "rename into place failed: \(msg)", path: path)
        }
    }

    /// Abandons the file: closes and removes the temporary.
    public func abandon() {
        guard !done else { return }
        close(fd)
        if !isSpecial { unlink(temporaryPath) }
        done = true
    }
}

/// Reads a file in chunks with bounded memory.
public enum FileChunks {
    /// Calls `body` with successive chunks of the file (`-` is standard input).
    /// - Throws: `ZstdError` of kind `.io` naming the path.
    public static func read(path: String, chunkSize: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let fd = path == "-" ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ZstdError(kind: .io, message: "cannot open: \(String(cString: strerror(errno)))", path: path) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, chunkSize) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ZstdError(kind: .io, message: "read failed: \(String(cString: strerror(errno)))", path: path)
            }
            if n == 0 { break }
            try buf.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }
}

extension ZstdDecompressor {
    /// Decompresses a whole file, streaming the output to `sink`; `compressed` sees each chunk of
    /// the file as read (to hash it in the same pass).
    /// - Throws: `ZstdError` naming the file and the compressed offset of any damage.
    public static func decompressFile(path: String, dictionary: ZstdDictionary? = nil,
                                      compressed: ((UnsafeRawBufferPointer) -> Void)? = nil,
                                      sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let d = try ZstdDecompressor(dictionary: dictionary)
        do {
            try FileChunks.read(path: path) { chunk in
                compressed?(chunk)
                try d.decompress(chunk, sink: sink)
            }
            try d.finish()
        } catch var e as ZstdError {
            if e.path == nil { e.path = path }
            throw e
        }
    }
}
