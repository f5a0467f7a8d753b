import ChatStoreZstd
import Foundation

/// Reads a compressed archive file on a thread of its own (the file's sha256 and size, zstd
/// decompression and its frame checksums) and hands the decompressed bytes to the caller in
/// bounded chunks, so that restore's JSON parsing and COPY run on the other core at the same
/// time. At most `capacity` chunks wait between the two: memory stays bounded whatever the size.
final class ArchiveFileReader: @unchecked Sendable {
    private let cond = NSCondition()
    private var chunks: [[UInt8]] = []
    private var finished = false, cancelled = false
    private var failure: Error?
    private let capacity: Int
    private let done = DispatchSemaphore(value: 0)
    /// Set by the reading thread; read only after `take()` returned nil.
    private(set) var hash = SHA256()
    private(set) var compressedBytes: Int64 = 0
    private(set) var uncompressedBytes: Int64 = 0

    /// Starts reading `path`.
    init(path: String, capacity: Int = 16) {
        self.capacity = capacity
        let thread = Thread { [self] in
            do {
                try ZstdDecompressor.decompressFile(path: path, compressed: { chunk in
                    self.hash.update(chunk)
                    self.compressedBytes += Int64(chunk.count)
                }) { chunk in
                    self.uncompressedBytes += Int64(chunk.count)
                    try self.put(Array(chunk.bindMemory(to: UInt8.self)))
                }
                self.finish(nil)
            } catch {
                self.finish(error)
            }
            self.done.signal()
        }
        thread.start()
    }

    private func put(_ chunk: [UInt8]) throws {
        cond.lock()
        defer { cond.unlock() }
        while chunks.count >= capacity && !cancelled { cond.wait() }
        if cancelled { throw CancellationError() }
        chunks.append(chunk)
        cond.broadcast()
    }

    private func finish(_ error: Error?) {
        cond.lock()
        finished = true
        failure = error
        cond.broadcast()
        cond.unlock()
    }

    /// The next decompressed chunk; nil at the end of the file. Rethrows the reader's error
    /// (I/O, damaged zstd data) once the chunks before it were taken.
    func take() throws -> [UInt8]? {
        cond.lock()
        defer { cond.unlock() }
        while chunks.isEmpty && !finished { cond.wait() }
        if !chunks.isEmpty {
            let c = chunks.removeFirst()
            cond.broadcast()
            return c
        }
        if let failure { throw failure }
        return nil
    }

    /// Stops the reading thread (if still reading) and waits for it to end. Call once, always.
    func close() {
        cond.lock()
        cancelled = true
        cond.broadcast()
        cond.unlock()
        done.wait()
    }
}
