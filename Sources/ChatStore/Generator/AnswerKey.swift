import Foundation

/// What the generator planted, so tests and operators can check that the jobs find exactly it.
public struct AnswerKey: Codable, Sendable, Equatable {
    /// Receipt anomaly categories, as the receipt audit names them.
    public enum Category: String, Codable, CaseIterable, Sendable {
        case readWithoutDelivered = "read_without_delivered"
        case readBeforeDelivered = "read_before_delivered"
        case deliveredBeforeSent = "delivered_before_sent"
        case statusBehindTimes = "status_behind_times"
        case senderReceipt = "sender_receipt"
        case nonMemberReceipt = "non_member_receipt"
        case duplicateReceipt = "duplicate_receipt"
        case missingReceipt = "missing_receipt"
    }

    public struct Unread: Codable, Sendable, Equatable {
        /// Sum of unread counts over every (user, conversation).
        public var total: Int
        /// Number of (user, conversation) pairs with at least one unread message.
        public var pairs: Int
        /// Σ (conversation_id × 1_000_003 + user_id) × count, order-independent.
        public var checksum: Int64
    }

    public var seed: UInt64
    public var users: Int
    public var conversations: Int
    public var members: Int
    public var messages: Int
    public var receipts: Int
    public var presenceEvents: Int
    public var media: Int
    /// Exact count of planted anomalies per category (category raw value → count).
    public var anomalies: [String: Int]
    /// Expected unread counts (see docs/generator.md for the definition).
    public var unread: Unread
    /// Receipts with no delivery and no read at the end (status 1, both times NULL).
    public var undelivered: Int
}
