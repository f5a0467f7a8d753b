import ChatStorePostgres
import Foundation

/// Receipts: a batch's deliveries and reads merged per receipt, new ones held back for their read
/// and copied in, the rest upserted.
extension IngestWorker {
    /// A receipt row's full key.
    struct ReceiptKey: Hashable {
        let conversation: Int64
        let message: Int64
        let sentAt: Int64
        let recipient: Int64

        /// A 64-bit digest for the placed-receipts filter (a collision only sends a receipt the
        /// slower, always-correct upsert way).
        var digest: Int64 {
            var h = UInt64(bitPattern: conversation) &* 0x9E37_79B9_7F4A_7C15
            h = (h ^ (h >> 32) ^ UInt64(bitPattern: message)) &* 0xBF58_476D_1CE4_E5B9
            h = (h ^ (h >> 31) ^ UInt64(bitPattern: recipient)) &* 0x94D0_49BB_1331_11EB
            return Int64(bitPattern: h ^ (h >> 29))
        }
    }

    /// A new receipt's delivery held back from writing: if its read arrives within
    /// `holdBatches` batches, the receipt is written once, complete, instead of inserted and then
    /// updated (an update rewrites the row and its index entries).
    struct Held {
        var delivered: Int64?
        var read: Int64?
        /// Batches it has waited.
        var age: Int
    }
    static let holdBatches = 5

    /// Merges a batch's deliveries and reads per receipt (the earliest of each), then writes new
    /// receipts of fresh messages with plain COPY and upserts the rest.
    /// - Returns: how many were copied and upserted, the digests of every receipt of a fresh
    ///   message written (to remember once the batch commits), and what is held back still.
    func applyReceipts(_ c: PostgresConnection, _ events: [EventIngester.Line], _ sentAts: [Int64], _ rows: [Int],
                       _ known: [MessageKey: IngestMemory.Recent], hold: Bool, outcome: inout Outcome)
        throws -> (copied: Int, upserted: Int, digests: [Int64], held: [ReceiptKey: Held]) {
        guard !rows.isEmpty || !held.isEmpty else { return (0, 0, [], [:]) }
        // What was held keeps its times and ages a batch; this batch's events join it.
        var merged = held.mapValues { Held(delivered: $0.delivered, read: $0.read, age: $0.age + 1) }
        merged.reserveCapacity(rows.count + held.count)
        var order = Array(held.keys)
        for i in rows {
            guard case .receipt(let cv, let m, let r, let at, let isRead) = events[i].event else { continue }
            let k = ReceiptKey(conversation: cv, message: m, sentAt: sentAts[i], recipient: r)
            var v = merged[k] ?? { order.append(k); return Held(age: 0) }()
            if isRead { v.read = min(v.read ?? at, at) } else { v.delivered = min(v.delivered ?? at, at) }
            merged[k] = v
        }
        // New receipts (of messages this run inserted, not yet written by it) can be copied in;
        // the rest may exist and are upserted.
        var copy: [ReceiptKey] = [], upsert: [ReceiptKey] = [], digests: [Int64] = []
        var stillHeld: [ReceiptKey: Held] = [:]
        for k in order {
            let v = merged[k]!
            // A held receipt is new by construction (its message fresh, the receipt not written).
            let wasHeld = held[k] != nil
            if wasHeld || known[MessageKey(k.conversation, k.message)]?.fresh == true {
                let d = k.digest
                if wasHeld || !memory.isPlaced(d) {
                    if hold && v.read == nil && v.age < IngestWorker.holdBatches {
                        stillHeld[k] = v
                        continue
                    }
                    copy.append(k)
                    digests.append(d)
                    continue
                }
                digests.append(d)
            }
            upsert.append(k)
        }
        func write(_ keys: [ReceiptKey], _ sql: SQL, status: Bool) throws {
            guard !keys.isEmpty else { return }
            try c.copyIn(sql) { w in
                for k in keys {
                    let v = merged[k]!
                    w.append(k.conversation); w.append(k.message); w.appendTimestamp(microseconds: k.sentAt); w.append(k.recipient)
                    if status { w.append(Int64(v.read == nil ? 2 : 3)) }
                    w.appendTimestamp(microseconds: v.delivered); w.appendTimestamp(microseconds: v.read)
                    try w.endRow()
                }
            }
        }
        var copied = 0
        if !copy.isEmpty {
            try attempt(c, .receipts, outcome: &outcome, fast: {
                try write(copy, "COPY chat.receipts (conversation_id, message_id, sent_at, recipient_id, status, delivered_at, read_at) FROM STDIN", status: true)
                copied = copy.count
            }, safe: {
                upsert += copy
            })
        }
        if !upsert.isEmpty {
            try write(upsert, "COPY ingest_receipts FROM STDIN", status: false)
            try run(c, IngestWorker.upsertReceipts)
        }
        outcome.copiedReceipts += copied
        return (copied, upsert.count, digests, stillHeld)
    }
}
