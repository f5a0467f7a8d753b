import CChatStoreLibPQ
import Foundation

/// Buffers rows for `COPY ... FROM STDIN` in text format and sends them in large chunks.
///
/// Build a row with the `append` methods, end it with `endRow()`. Text is escaped for COPY's text
/// format (backslash, tab, newline, carriage return); `appendNull()` writes `\N`.
public struct CopyInWriter: ~Copyable {
    var buffer: [UInt8] = []
    let flushThreshold: Int
    let send: ([UInt8]) throws -> Void
    var fieldsInRow = 0
    /// Rows ended so far.
    public private(set) var rowCount = 0

    init(flushThreshold: Int, send: @escaping ([UInt8]) throws -> Void) {
        self.flushThreshold = flushThreshold
        self.send = send
        buffer.reserveCapacity(flushThreshold + 4096)
    }

    @inline(__always) mutating func separator() {
        if fieldsInRow > 0 { buffer.append(9) }
        fieldsInRow += 1
    }

    /// Appends a text field, escaped.
    public mutating func append(_ text: String) {
        separator()
        var s = text
        s.withUTF8 { u in
            for c in u {
                switch c {
                case 92: buffer.append(92); buffer.append(92)
                case 9: buffer.append(92); buffer.append(116)
                case 10: buffer.append(92); buffer.append(110)
                case 13: buffer.append(92); buffer.append(114)
                default: buffer.append(c)
                }
            }
        }
    }

    /// Appends an optional text field (`nil` → NULL).
    public mutating func append(_ text: String?) {
        if let text { append(text) } else { appendNull() }
    }

    /// Appends an integer field.
    public mutating func append(_ value: Int64) {
        separator()
        appendDigits(value)
    }

    /// Appends an integer field.
    public mutating func append(_ value: Int) { append(Int64(value)) }

    /// Appends an optional integer field.
    public mutating func append(_ value: Int64?) {
        if let value { append(value) } else { appendNull() }
    }

    /// Appends a boolean field.
    public mutating func append(_ value: Bool) {
        separator()
        buffer.append(value ? 116 : 102)
    }

    /// Appends a timestamp given as microseconds since the epoch (UTC), formatted as ISO text.
    public mutating func appendTimestamp(microseconds: Int64) {
        separator()
        // Civil date from days since the epoch (H. Hinnant's algorithm), written without allocation.
        var secs = microseconds / 1_000_000
        var frac = microseconds % 1_000_000
        if frac < 0 { frac += 1_000_000; secs -= 1 }
        var days = secs / 86_400
        var sod = secs % 86_400
        if sod < 0 { sod += 86_400; days -= 1 }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        var y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        if m <= 2 { y += 1 }
        @inline(__always) func two(_ v: Int64) { buffer.append(UInt8(48 + v / 10)); buffer.append(UInt8(48 + v % 10)) }
        two(y / 100); two(y % 100)
        buffer.append(45); two(m); buffer.append(45); two(d)
        buffer.append(32); two(sod / 3600); buffer.append(58); two(sod / 60 % 60); buffer.append(58); two(sod % 60)
        buffer.append(46)
        two(frac / 10_000); two(frac / 100 % 100); two(frac % 100)
        buffer.append(43); buffer.append(48); buffer.append(48)
    }

    /// Appends an optional timestamp.
    public mutating func appendTimestamp(microseconds: Int64?) {
        if let microseconds { appendTimestamp(microseconds: microseconds) } else { appendNull() }
    }

    /// Appends bytes as a `bytea` field (hex form).
    public mutating func appendBytea(_ bytes: some Collection<UInt8>) {
        separator()
        buffer.append(92); buffer.append(92); buffer.append(120) // \\x
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for b in bytes { buffer.append(hex[Int(b >> 4)]); buffer.append(hex[Int(b & 15)]) }
    }

    /// Appends SQL NULL.
    public mutating func appendNull() {
        separator()
        buffer.append(92); buffer.append(78)
    }

    /// Appends already-escaped COPY text for one field (no escaping is done).
    public mutating func appendRawField(_ bytes: some Collection<UInt8>) {
        separator()
        buffer.append(contentsOf: bytes)
    }

    /// Ends the current row; sends the buffer when it passes the threshold.
    public mutating func endRow() throws {
        buffer.append(10)
        fieldsInRow = 0
        rowCount += 1
        if buffer.count >= flushThreshold { try flush() }
    }

    /// Sends pre-formatted COPY text (whole lines) as-is.
    public mutating func writeRaw(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > flushThreshold { try flush() }
        if bytes.count >= flushThreshold {
            try send(Array(bytes))
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    @inline(__always) mutating func appendDigits(_ value: Int64) {
        if value == 0 { buffer.append(48); return }
        var v = value.magnitude
        if value < 0 { buffer.append(45) }
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &tmp) { t in
            while v > 0 { t[n] = UInt8(48 + v % 10); v /= 10; n += 1 }
            while n > 0 { n -= 1; buffer.append(t[n]) }
        }
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try send(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

extension PostgresConnection {
    /// Streams rows into `COPY ... FROM STDIN` (text format).
    ///
    /// If `body` throws, the COPY is aborted on the server so nothing of it is kept, and the error
    /// is rethrown.
    /// - Returns: the number of rows the server loaded.
    ///
    /// With `backgroundQueue` > 0, chunks are sent by a thread of this COPY's own through a queue
    /// of that many chunks, so a producer feeding several COPY streams is not held up by the
    /// slowest server backend (memory: up to `backgroundQueue` × `flushThreshold` bytes).
    @discardableResult
    public func copyIn(_ sql: SQL, flushThreshold: Int = 1 << 20, backgroundQueue: Int = 0,
                       _ body: (inout CopyInWriter) throws -> Void) throws -> Int {
        let text = render(sql)
        try startCopy(text, expect: PGRES_COPY_IN)
        let h = handle
        let sender = backgroundQueue > 0 ? CopySender(handle: h, capacity: backgroundQueue) : nil
        sender?.start()
        var writer = CopyInWriter(flushThreshold: flushThreshold) { [unowned self] bytes in
            if let sender {
                if !sender.put(bytes) { throw self.connectionError(statement: text) }
                return
            }
            let ok = bytes.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { PQputCopyData(h, $0.baseAddress, Int32($0.count)) }
            }
            if ok != 1 { throw self.connectionError(statement: text) }
        }
        do {
            try body(&writer)
            try writer.flush()
            if let sender, !sender.finish() { throw connectionError(statement: text) }
        } catch {
            sender?.finish(discard: true)
            _ = PQputCopyEnd(h, "aborted by client: \(error)")
            while let r = PQgetResult(h) { PQclear(r) }
            throw error
        }
        guard PQputCopyEnd(h, nil) == 1 else { throw connectionError(statement: text) }
        return try finishCopy(statement: text)
    }

    /// Runs `COPY ... TO STDOUT` and hands each chunk (one row in text format) to `body` as it
    /// arrives; nothing is accumulated.
    ///
    /// If `body` throws, the running COPY is cancelled and the connection drained.
    /// - Returns: the number of rows sent by the server.
    @discardableResult
    public func copyOut(_ sql: SQL, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        let text = render(sql)
        try startCopy(text, expect: PGRES_COPY_OUT)
        var buf: UnsafeMutablePointer<CChar>?
        while true {
            let n = PQgetCopyData(handle, &buf, 0)
            if n > 0 {
                defer { PQfreemem(buf) }
                do {
                    try body(UnsafeRawBufferPointer(start: buf, count: Int(n)))
                } catch {
                    PQfreemem(buf)
                    buf = nil
                    cancel()
                    while PQgetCopyData(handle, &buf, 0) > 0 { PQfreemem(buf) }
                    while let r = PQgetResult(handle) { PQclear(r) }
                    throw error
                }
            } else if n == -1 {
                break
            } else {
                throw connectionError(statement: text)
            }
        }
        return try finishCopy(statement: text)
    }

    private func startCopy(_ text: String, expect: ExecStatusType) throws {
        guard let res = PQexec(handle, text) else { throw connectionError(statement: text) }
        let status = PQresultStatus(res)
        if status == expect { PQclear(res); return }
        if status == PGRES_FATAL_ERROR {
            let e = serverError(res, statement: text)
            PQclear(res)
            throw e
        }
        PQclear(res)
        while let r = PQgetResult(handle) { PQclear(r) }
        throw PostgresError(kind: .usage, message: "statement is not a COPY \(expect == PGRES_COPY_IN ? "FROM STDIN" : "TO STDOUT")", statement: text)
    }

    private func finishCopy(statement: String) throws -> Int {
        var count = 0
        var failure: PostgresError?
        while let res = PQgetResult(handle) {
            if PQresultStatus(res) == PGRES_COMMAND_OK {
                count = Int(String(cString: PQcmdTuples(res))) ?? 0
            } else if failure == nil {
                failure = serverError(res, statement: statement)
            }
            PQclear(res)
        }
        if let failure { throw failure }
        return count
    }
}
