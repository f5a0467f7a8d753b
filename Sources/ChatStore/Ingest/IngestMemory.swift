/// What an ingest worker remembers between batches, in bounded memory: recent messages (when
/// each was sent, and whether this run inserted it), digests of the receipts this run wrote for
/// those fresh messages, and conversations known to exist. It is a hint: a receipt wrongly taken
/// for new makes its step's COPY fail and the receipts be upserted instead.
struct IngestMemory {
    typealias MessageKey = IngestWorker.MessageKey

    /// What the worker remembers about a message it ingested recently: when it was sent (for
    /// receipt lookups) and whether this run inserted it (`fresh`).
    struct Recent {
        let sentAt: Int64
        let fresh: Bool
    }
    // Two generations each: the older one is dropped when the current one is full.
    private var recent: [MessageKey: Recent] = [:]
    private var olderRecent: [MessageKey: Recent] = [:]
    private var placed = Set<Int64>()
    private var olderPlaced = Set<Int64>()
    /// Conversations known to exist (they are not deleted while ingesting; if one were, its
    /// foreign keys would fail the batch).
    private(set) var conversations = Set<Int64>()
    let messagesPerGeneration: Int
    let receiptsPerGeneration: Int

    /// - Parameter capacity: how many recent messages to remember (about half to all of it);
    ///   four times as many receipt digests.
    init(capacity: Int) {
        messagesPerGeneration = max(1, capacity / 2)
        receiptsPerGeneration = max(1, capacity * 2)
    }

    /// A remembered message, nil when forgotten or never seen.
    func message(_ key: MessageKey) -> Recent? { recent[key] ?? olderRecent[key] }

    /// Records a committed batch's messages, written receipts and known conversations. When the
    /// current generation of messages or receipts is full, both start a new one together: a
    /// message's receipts are written in its generation or a later one, so while a message is
    /// remembered as fresh, the receipts this run wrote for it are remembered too.
    mutating func remember(messages: [(MessageKey, Recent)], placedReceipts: [Int64], conversations seen: Set<Int64>) {
        for (k, r) in messages { recent[k] = r }
        for d in placedReceipts { placed.insert(d) }
        if recent.count >= messagesPerGeneration || placed.count >= receiptsPerGeneration {
            olderRecent = recent
            recent = [:]
            olderPlaced = placed
            placed = []
        }
        if conversations.count + seen.count > messagesPerGeneration { conversations = [] }
        conversations.formUnion(seen)
    }

    /// Whether this run wrote the receipt with this digest (as far as remembered).
    func isPlaced(_ digest: Int64) -> Bool { placed.contains(digest) || olderPlaced.contains(digest) }
}
