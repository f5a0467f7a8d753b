/// A growable byte buffer for the hot loops that build NDJSON: the caller reserves room for a
/// whole row once, then writes through a raw pointer without a capacity check or a reference
/// count per byte (appending to `[UInt8]` byte by byte cost about half of the export's CPU).
final class ByteBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    /// Bytes written.
    var count = 0

    init(capacity: Int = 1 << 20) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    /// Makes room for `n` more bytes and returns where they go; `commit(end:)` records what was written.
    @inline(__always) func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if count + n > capacity { grow(count + n) }
        return base + count
    }

    /// Records the bytes written up to `end` (a pointer returned by `reserve`, advanced).
    @inline(__always) func commit(end: UnsafeMutablePointer<UInt8>) { count = end - base }

    private func grow(_ needed: Int) {
        var c = capacity * 2
        while c < needed { c *= 2 }
        let b = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        b.update(from: base, count: count)
        base.deallocate()
        base = b
        capacity = c
    }

    /// The bytes written.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Forgets the bytes (keeps the memory).
    func clear() { count = 0 }
}
