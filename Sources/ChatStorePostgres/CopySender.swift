import CChatStoreLibPQ
import Foundation

/// Sends one COPY's chunks from a thread of its own, through a small bounded queue.
///
/// A writer that feeds several COPY streams from one thread blocks in `PQputCopyData` whenever
/// one server backend falls behind (its socket buffer is full), and the other backends then wait
/// for data. With a sender per stream, a slow backend stalls only its own queue; the producer
/// keeps the others busy until that queue is full.
final class CopySender: @unchecked Sendable {
    private let cond = NSCondition()
    private var queue: [[UInt8]] = []
    private var head = 0
    private let capacity: Int
    private let handle: OpaquePointer
    private var closing = false
    private var finished = false
    private var failed = false

    init(handle: OpaquePointer, capacity: Int) {
        self.handle = handle
        self.capacity = capacity
    }

    func start() {
        let t = Thread { [self] in loop() }
        t.name = "chatstore.copy-sender"
        t.start()
    }

    private func loop() {
        while true {
            cond.lock()
            while head == queue.count && !closing { cond.wait() }
            if head == queue.count {
                finished = true
                cond.broadcast()
                cond.unlock()
                return
            }
            let chunk = queue[head]
            queue[head] = []
            head += 1
            if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0 }
            cond.broadcast()
            cond.unlock()
            let ok = chunk.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
            }
            if ok != 1 {
                cond.lock()
                failed = true
                finished = true
                queue.removeAll()
                head = 0
                cond.broadcast()
                cond.unlock()
                return
            }
        }
    }

    /// Queues a chunk, waiting while the queue is full.
    /// - Returns: false when the sender has failed (the connection's error says why).
    func put(_ chunk: [UInt8]) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        while queue.count - head >= capacity && !finished { cond.wait() }
        if finished { return false }
        queue.append(chunk)
        cond.broadcast()
        return true
    }

    /// Sends what is queued (or, with `discard`, drops it), then stops the thread.
    /// - Returns: false when a send failed.
    @discardableResult
    func finish(discard: Bool = false) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        if discard { queue.removeAll(); head = 0 }
        closing = true
        cond.broadcast()
        while !finished { cond.wait() }
        return !failed
    }
}
