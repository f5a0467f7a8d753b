import ChatStorePostgres
import ChatStoreZstd
import Foundation
import Logging

/// Loads NDJSON event streams (plain or `.zst`), idempotently, in batches.
///
/// Each line is parsed and checked (JSON, fields and types, UTF-8, timestamps inside a
/// partition), then checked against the database and the batch (unknown conversation, user or
/// message). Good lines are staged through COPY and applied with upserts that never move a
/// receipt backwards, so re-running a file changes nothing. Bad lines go to the reject file with
/// `file:line` and the reason; with `strict`, the first bad line aborts and nothing is committed.
public final class EventIngester: @unchecked Sendable {
    public struct Options: Sendable {
        public var strict = false
        public var batchSize = 10_000
        /// Connections applying batches in parallel (conversations are split among them); strict
        /// mode always uses one.
        public var workers = 2
        /// Where rejected lines go (`file:line<TAB>reason<TAB>line`); nil: not written.
        public var rejectPath: String?
        public init() {}
    }

    public struct Report: Codable, Sendable {
        public var lines: Int
        public var accepted: Int
        public var rejected: Int
        public var byType: [String: Int]
        public var rejectReasons: [String: Int]
        public var firstRejects: [String]
        public var seconds: Double
        /// Receipts written by plain COPY as new (the rest were upserted).
        public var receiptsCopied = 0
        /// Batch steps (messages, receipts, presence) whose plain COPY met rows already stored
        /// (a re-run, duplicate events, another writer) and that were upserted instead.
        public var stepsUpserted = 0
        public var linesPerSecond: Double { seconds > 0 ? Double(lines) / seconds : 0 }
    }

    /// Thrown in strict mode at the first bad line.
    public struct StrictFailure: Error, CustomStringConvertible, LocalizedError {
        public let location: String
        public let reason: String
        public var description: String { "\(location): \(reason) (strict mode: nothing was committed)" }
        public var errorDescription: String? { description }
    }

    let conn: PostgresConnection
    let settings: ConnectionSettings?
    let options: Options
    let logger: Logger
    private var report = Report(lines: 0, accepted: 0, rejected: 0, byType: [:], rejectReasons: [:], firstRejects: [], seconds: 0)
    private var rejects: AtomicFileWriter?
    private var ranges: [String: [(Int64, Int64)]] = [:]
    /// The files being ingested (a reject names its file by index).
    private var paths: [String] = []
    /// How many recently ingested messages are remembered for receipt lookups (shared out
    /// among the workers).
    static let recentCapacity = 200_000

    /// - Parameters:
    ///   - connection: the first worker's connection (the only one in strict mode).
    ///   - settings: where further workers connect (`options.workers` > 1); nil: one worker.
    public init(connection: PostgresConnection, options: Options, logger: Logger, settings: ConnectionSettings? = nil) {
        conn = connection
        self.settings = settings
        self.options = options
        self.logger = logger
    }

    /// Ingests the files in order.
    /// - Returns: counts of lines, accepted, rejected (by reason).
    /// - Throws: `StrictFailure` (strict mode), `PostgresError`, `ZstdError` (a damaged `.zst`).
    public func ingest(paths: [String], progress: ((Int) -> Void)? = nil) throws -> Report {
        if let r = options.rejectPath {
            // The reject file is written beside the inputs: never over one of them.
            for p in paths where EventIngester.sameFile(r, p) {
                throw EventError("the reject file \(r) is one of the input files: give --reject-file another path")
            }
        }
        do {
            return try run(paths: paths, progress: progress)
        } catch {
            // The rejects of what was processed are kept when the run stops on an error (the
            // committed batches stay committed; their rejected lines are in the file).
            if let rejects {
                for round in pending { try? writeInFileOrder(round.rejects) }
                pending = []
                try? rejects.commit()
            }
            throw error
        }
    }

    /// Whether two paths name the same file (an existing one, by device and inode; else by the
    /// standardized path).
    static func sameFile(_ a: String, _ b: String) -> Bool {
        // `-` is standard input among the inputs and standard output as the reject file.
        if a == "-" || b == "-" { return false }
        var sa = stat(), sb = stat()
        if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
        return URL(fileURLWithPath: a).standardizedFileURL.path == URL(fileURLWithPath: b).standardizedFileURL.path
    }

    private func run(paths: [String], progress: ((Int) -> Void)?) throws -> Report {
        let t0 = Date()
        self.paths = paths
        if let r = options.rejectPath { rejects = try AtomicFileWriter(path: r) }
        let pm = PartitionManager(logger: logger)
        for parent in ["messages", "receipts", "presence_events"] {
            ranges[parent] = try pm.partitions(conn, parent: parent).map {
                (Int64($0.from.timeIntervalSince1970) * 1_000_000, Int64($0.to.timeIntervalSince1970) * 1_000_000)
            }
        }
        // One worker on this connection; with more, each further worker gets a connection and a
        // thread of its own (a lane) and this connection only adds new users. Strict mode is one
        // transaction, so one connection.
        let laneCount = options.strict || settings == nil || options.workers < 2 ? 0 : options.workers
        let first = IngestWorker(connection: conn, strict: options.strict, ranges: ranges,
                                 recentCapacity: EventIngester.recentCapacity / max(1, laneCount), logger: logger)
        try first.createStaging()
        var lanes: [IngestLane] = []
        for _ in 0..<laneCount {
            let w = IngestWorker(connection: try PostgresConnection(settings: settings!, logger: logger), strict: false,
                                 ranges: ranges, recentCapacity: EventIngester.recentCapacity / laneCount, logger: logger)
            try w.createStaging()
            lanes.append(IngestLane(w))
        }
        for lane in lanes { lane.start() }
        defer { for lane in lanes { lane.close(discard: true) } }
        if options.strict {
            var batch = Batch(paths: paths)
            func flush() throws {
                let outcome = try first.flush(batch.lines, batch.source)
                batch = Batch(paths: paths)
                if let r = outcome.rejects.first { try reject(r) }
                count(outcome)
            }
            try conn.transaction { _ in
                for (fileIndex, path) in paths.enumerated() {
                    try self.readLines(path) { lineNo, bytes in
                        self.report.lines += 1
                        switch Self.parseEvent(bytes, ranges: self.ranges) {
                        case .success(let event): batch.append(event, file: fileIndex, number: lineNo, bytes: bytes)
                        case .failure(let e):
                            // Earlier lines of the batch are checked first, so the error reported
                            // is the first bad line in file order.
                            try flush()
                            try self.reject(Reject(file: fileIndex, line: lineNo, text: Array(bytes), reason: e.reason))
                        }
                        if batch.lines.count >= self.options.batchSize { try flush() }
                    }
                }
                try flush()
            }
        } else {
            // Parsing runs on its own thread, one batch ahead of the database work.
            let queue = BatchQueue(capacity: 1)
            let ranges = self.ranges
            let batchSize = options.batchSize
            let reader = Thread { [self] in
                var batch = Batch(paths: paths)
                var bad: [Reject] = []
                var lines = 0
                do {
                    for (fileIndex, path) in paths.enumerated() {
                        try self.readLines(path) { lineNo, bytes in
                            lines += 1
                            switch Self.parseEvent(bytes, ranges: ranges) {
                            case .success(let event): batch.append(event, file: fileIndex, number: lineNo, bytes: bytes)
                            case .failure(let e):
                                bad.append(Reject(file: fileIndex, line: lineNo, text: Array(bytes), reason: e.reason))
                            }
                            if batch.lines.count >= batchSize {
                                let used = batch.source.bytes.count
                                queue.put(.batch(batch, bad, lines))
                                batch = Batch(paths: paths, lines: batchSize, bytes: used + used / 8)
                                bad = []; lines = 0
                            }
                        }
                    }
                    queue.put(.batch(batch, bad, lines))
                    queue.put(.end)
                } catch {
                    queue.put(.failed(String(describing: error)))
                }
            }
            reader.start()
            defer { queue.cancel() }
            loop: while true {
                switch queue.take() {
                case .batch(let batch, let bad, let lines):
                    report.lines += lines
                    try applyRound(batch, bad, first: first, lanes: lanes)
                    progress?(report.lines)
                case .end: break loop
                case .failed(let message):
                    throw EventError(message)
                }
            }
            if lanes.isEmpty { count(try first.finish()) }
            for lane in lanes { lane.close(discard: false) }
            try collect(lanes)
            // Every lane has reported by now; nothing may stay unwritten.
            for round in pending { try writeInFileOrder(round.rejects) }
            pending = []
        }
        try rejects?.commit()
        report.seconds = Date().timeIntervalSince(t0)
        return report
    }

    private func count(_ o: IngestWorker.Outcome) {
        report.accepted += o.accepted
        report.receiptsCopied += o.copiedReceipts
        report.stepsUpserted += o.stepsUpserted
        for (k, v) in o.byType { report.byType[k, default: 0] += v }
    }

    /// The worker that owns an event: a conversation's events always go to the same worker (so
    /// it sees them in file order); users go to the first worker, presence by user.
    static func route(_ e: Event, _ n: Int) -> Int {
        func slot(_ id: Int64) -> Int { Int(id.magnitude % UInt64(n)) }
        switch e {
        case .user: return 0
        case .conversation(let id, _, _, _, _): return slot(id)
        case .join(let cv, _, _, _), .leave(let cv, _, _), .message(let cv, _, _, _, _, _, _, _, _, _, _),
             .receipt(let cv, _, _, _, _), .media(let cv, _, _, _, _, _): return slot(cv)
        case .presence(let u, _, _, _): return slot(u)
        }
    }

    /// Applies one round (a batch of lines in file order). With one worker, in one transaction.
    /// With lanes: the round's new users first, committed on this connection (the lanes' foreign
    /// keys must see them), then each lane gets its share and applies it in its own transaction
    /// while the next round is parsed and dispatched; lanes touch disjoint conversations, so they
    /// never wait for each other. A round's rejects (from parsing and from every lane) are written
    /// once all its lanes have reported, in file order.
    private func applyRound(_ batch: Batch, _ bad: [Reject], first: IngestWorker, lanes: [IngestLane]) throws {
        let n = lanes.count
        if n == 0 {
            let o = try first.flush(batch.lines, batch.source)
            count(o)
            try writeInFileOrder(bad + o.rejects)
            return
        }
        var shares = Array(repeating: [Line](), count: n)
        for i in shares.indices { shares[i].reserveCapacity(batch.lines.count / n + batch.lines.count / (4 * n)) }
        var newUsers: [Line] = []
        for line in batch.lines {
            if case .user = line.event { newUsers.append(line) } else { shares[EventIngester.route(line.event, n)].append(line) }
        }
        var round = PendingRound(number: nextRound, waiting: 0, rejects: bad)
        nextRound += 1
        if !newUsers.isEmpty {
            let o = try first.flush(newUsers, batch.source)
            count(o)
            round.rejects += o.rejects
        }
        for (lane, share) in zip(lanes, shares) where !share.isEmpty {
            lane.put(share, batch.source, round: round.number)
            round.waiting += 1
        }
        pending.append(round)
        try collect(lanes)
    }

    /// A round whose lanes have not all reported: its rejects wait, so that the reject file
    /// lists lines in file order.
    struct PendingRound {
        let number: Int
        var waiting: Int
        var rejects: [Reject]
    }
    private var pending: [PendingRound] = []
    private var nextRound = 0

    private func writeInFileOrder(_ rejects: [Reject]) throws {
        for r in rejects.sorted(by: { ($0.file, $0.line) < ($1.file, $1.line) }) { try reject(r) }
    }

    /// Counts what the lanes finished and rethrows a lane's error; writes the rejects of every
    /// round all of whose lanes have reported, in round and then file order.
    private func collect(_ lanes: [IngestLane]) throws {
        for lane in lanes {
            let (outcomes, error) = lane.drain()
            for (roundNumber, o) in outcomes {
                count(o)
                if let roundNumber, let i = pending.firstIndex(where: { $0.number == roundNumber }) {
                    pending[i].rejects += o.rejects
                    pending[i].waiting -= 1
                }
            }
            if let error { throw error }
        }
        while let round = pending.first, round.waiting == 0 {
            pending.removeFirst()
            try writeInFileOrder(round.rejects)
        }
    }

    /// A parsed line: its event, and where it is in the files and in its batch's `LineSource`.
    struct Line {
        let event: Event
        let file: Int32
        let length: Int32
        let number: Int
        let offset: Int
    }

    /// The lines of a batch in file order, and the bytes behind them.
    struct Batch {
        var lines: [Line] = []
        let source: LineSource
        init(paths: [String]) { source = LineSource(paths: paths) }

        /// A batch with room for `lines` lines of `bytes` bytes in all (filling it reallocates nothing).
        init(paths: [String], lines: Int, bytes: Int) {
            source = LineSource(paths: paths)
            self.lines.reserveCapacity(lines)
            source.bytes.reserveCapacity(bytes)
        }

        mutating func append(_ event: Event, file: Int, number: Int, bytes: UnsafeRawBufferPointer) {
            lines.append(Line(event: event, file: Int32(file), length: Int32(bytes.count), number: number, offset: source.bytes.count))
            source.bytes.append(contentsOf: bytes)
        }
    }

    /// A batch's raw lines, one after another, kept for the reject file: a reject's location and
    /// text are made only when a line is rejected. Filled by the reader, read-only once handed over.
    final class LineSource: @unchecked Sendable {
        let paths: [String]
        var bytes: [UInt8] = []
        init(paths: [String]) { self.paths = paths }
        /// `file:line`.
        func location(_ l: Line) -> String { "\(paths[Int(l.file)]):\(l.number)" }
        func text(_ l: Line) -> [UInt8] { Array(bytes[l.offset..<(l.offset + Int(l.length))]) }
        func reject(_ l: Line, _ reason: String) -> Reject {
            Reject(file: Int(l.file), line: l.number, text: text(l), reason: reason)
        }
    }

    /// A rejected line: where it is (index in the files given, line number), its bytes and why.
    struct Reject {
        let file: Int
        let line: Int
        let text: [UInt8]
        let reason: String
    }

    /// Parses and checks one line on its own (no database): JSON, fields, timestamps, partitions.
    static func parseEvent(_ bytes: UnsafeRawBufferPointer, ranges: [String: [(Int64, Int64)]]) -> Result<Event, EventError> {
        if bytes.count == overlongLine.count, bytes.elementsEqual(overlongLine) {
            return .failure(EventError("line longer than \(maximumLineBytes >> 20) MiB, the limit for one event"))
        }
        do {
            let obj: FlatObject
            do { obj = try FlatJSON.parse(bytes) } catch let e as FlatJSON.ParseError { throw EventError("malformed JSON at \(e.description)") }
            let event = try Event.from(obj)
            try checkPartition(event, ranges)
            return .success(event)
        } catch let e as EventError {
            return .failure(e)
        } catch {
            return .failure(EventError(String(describing: error)))
        }
    }

    // MARK: - Reading

    /// The longest line read as one event (16 MiB). A longer line is not kept in memory: it is
    /// passed on as `overlongLine`, which `parseEvent` rejects with its own reason, and reading
    /// goes on at the next line.
    public static let maximumLineBytes = 16 << 20

    /// What a line longer than `maximumLineBytes` is replaced with (and what the reject file
    /// shows for it): it starts with `<`, which no JSON line can.
    static let overlongLine: [UInt8] = Array("<line longer than 16 MiB: not kept>".utf8)

    /// Calls `body` with each non-empty line's number and bytes (without the line break; valid
    /// only during the call).
    private func readLines(_ path: String, _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
        var pending: [UInt8] = []
        var overlong = false
        var lineNo = 0
        func emit(_ line: UnsafeRawBufferPointer) throws {
            lineNo += 1
            if overlong || line.count > Self.maximumLineBytes {
                overlong = false
                try Self.overlongLine.withUnsafeBytes { try body(lineNo, $0) }
                return
            }
            var line = line
            if line.last == 13 { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
            // A UTF-8 byte order mark at the start of a file (Windows editors write one) is not
            // part of the first event: skipped, and said once.
            if lineNo == 1, line.count >= 3, line[0] == 0xEF, line[1] == 0xBB, line[2] == 0xBF {
                line = UnsafeRawBufferPointer(rebasing: line.dropFirst(3))
                logger.notice("\(path) starts with a UTF-8 byte order mark: skipped")
            }
            if !line.isEmpty { try body(lineNo, line) }
        }
        func keep(_ bytes: UnsafeRawBufferPointer.SubSequence) {
            guard !overlong else { return }
            if pending.count + bytes.count > Self.maximumLineBytes {
                overlong = true
                pending = []
            } else {
                pending.append(contentsOf: bytes)
            }
        }
        func feed(_ chunk: UnsafeRawBufferPointer) throws {
            var start = 0
            while let nl = chunk[start...].firstIndex(of: 10) {
                if pending.isEmpty && !overlong {
                    try emit(UnsafeRawBufferPointer(rebasing: chunk[start..<nl]))
                } else {
                    keep(chunk[start..<nl])
                    try pending.withUnsafeBytes { try emit($0) }
                    pending.removeAll(keepingCapacity: true)
                }
                start = nl + 1
            }
            keep(chunk[start...])
        }
        if path.hasSuffix(".zst") {
            try ZstdDecompressor.decompressFile(path: path) { try feed($0) }
        } else {
            try FileChunks.read(path: path) { try feed($0) }
        }
        if !pending.isEmpty || overlong { try pending.withUnsafeBytes { try emit($0) } }
    }

    static func checkPartition(_ e: Event, _ ranges: [String: [(Int64, Int64)]]) throws {
        func check(_ parent: String, _ t: Int64) throws {
            guard ranges[parent]!.contains(where: { $0.0 <= t && t < $0.1 }) else {
                throw EventError("timestamp \(PostgresTimestamp.format(microsecondsSinceEpoch: t)) is outside every \(parent) partition (run `chatstore partitions ensure`, or create partitions for that range)")
            }
        }
        switch e {
        case .message(_, _, _, let t, _, _, _, _, _, _, _): try check("messages", t)
        case .presence(_, let t, _, _): try check("presence_events", t)
        default: break
        }
    }

    private func reject(_ r: Reject) throws {
        let loc = "\(paths[r.file]):\(r.line)", line = r.text, reason = r.reason
        if options.strict { throw StrictFailure(location: loc, reason: reason) }
        report.rejected += 1
        // Group reasons without their varying details (ids, columns, values).
        let key = String(reason.prefix { $0 != ":" }).replacingOccurrences(of: "(?<!ISO )\\b[0-9]+\\b", with: "N", options: .regularExpression)
        report.rejectReasons[String(key.prefix(80)), default: 0] += 1
        if report.firstRejects.count < 20 { report.firstRejects.append("\(loc): \(reason)") }
        if let rejects {
            try rejects.write(Array("\(loc)\t\(reason)\t".utf8))
            // Invalid UTF-8 is replaced by U+FFFD so the reject file stays valid text.
            try rejects.write(Array(String(decoding: line.map { $0 == 9 || $0 == 10 ? 32 : $0 }, as: UTF8.self).utf8))
            try rejects.write([10])
        }
    }

}

/// A worker with a thread of its own and a queue of one batch: it applies batches in the order
/// given while the caller dispatches the next; outcomes and the first error wait for `drain`.
final class IngestLane: @unchecked Sendable {
    typealias Batch = (lines: [EventIngester.Line], source: EventIngester.LineSource, round: Int)
    private let worker: IngestWorker
    private let cond = NSCondition()
    private var queue: [Batch] = []
    private var closed = false
    private var done = false
    private var discarding = false
    /// Outcomes by round (nil: the final write of what the worker held back).
    private var outcomes: [(Int?, IngestWorker.Outcome)] = []
    private var error: Error?

    init(_ worker: IngestWorker) { self.worker = worker }

    func start() {
        let t = Thread { [self] in loop() }
        t.name = "chatstore.ingest-lane"
        t.start()
    }

    private func loop() {
        while true {
            cond.lock()
            while queue.isEmpty && !closed { cond.wait() }
            if queue.isEmpty {
                // Closed: write what the worker holds back, unless discarding or failed.
                let finish = !discarding && error == nil
                cond.unlock()
                let result = finish ? Result { try worker.finish() } : nil
                cond.lock()
                record(result, round: nil)
                done = true
                cond.broadcast()
                cond.unlock()
                return
            }
            let batch = queue.removeFirst()
            let skip = error != nil
            cond.broadcast()
            cond.unlock()
            let result = skip ? nil : Result { try worker.flush(batch.lines, batch.source) }
            cond.lock()
            record(result, round: batch.round)
            cond.broadcast()
            cond.unlock()
        }
    }

    /// Keeps an outcome, or the first error (called with `cond` locked).
    private func record(_ result: Result<IngestWorker.Outcome, Error>?, round: Int?) {
        switch result {
        case .success(let o): outcomes.append((round, o))
        case .failure(let e): error = error ?? e
        case nil: break
        }
    }

    /// Queues a batch, waiting while one is already queued.
    func put(_ lines: [EventIngester.Line], _ source: EventIngester.LineSource, round: Int) {
        cond.lock()
        while !queue.isEmpty && !closed { cond.wait() }
        if !closed { queue.append((lines, source, round)) }
        cond.broadcast()
        cond.unlock()
    }

    /// What finished since the last call, and the first error.
    func drain() -> ([(Int?, IngestWorker.Outcome)], Error?) {
        cond.lock()
        defer { cond.unlock() }
        let o = outcomes
        outcomes = []
        return (o, error)
    }

    /// Finishes the queued batch and what the worker holds back (or, with `discard`, drops
    /// them) and stops the thread.
    func close(discard: Bool) {
        cond.lock()
        if discard { queue.removeAll(); discarding = true }
        closed = true
        cond.broadcast()
        while !done { cond.wait() }
        cond.unlock()
    }
}

/// A bounded hand-off of parsed batches from the reader thread to the database thread.
final class BatchQueue: @unchecked Sendable {
    enum Item {
        case batch(EventIngester.Batch, [EventIngester.Reject], Int)
        case end
        case failed(String)
    }
    private var items: [Item] = []
    private let capacity: Int
    private let cond = NSCondition()
    init(capacity: Int) { self.capacity = capacity }
    private var cancelled = false
    /// Makes every later `put` return at once (the consumer stopped after an error).
    func cancel() {
        cond.lock()
        cancelled = true
        items.removeAll()
        cond.broadcast()
        cond.unlock()
    }
    func put(_ item: Item) {
        cond.lock()
        while items.count >= capacity && !cancelled { cond.wait() }
        if cancelled { cond.unlock(); return }
        items.append(item)
        cond.broadcast()
        cond.unlock()
    }
    func take() -> Item {
        cond.lock()
        while items.isEmpty { cond.wait() }
        let item = items.removeFirst()
        cond.broadcast()
        cond.unlock()
        return item
    }
}
