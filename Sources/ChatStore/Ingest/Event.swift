import ChatStorePostgres
import Foundation

/// One event of the NDJSON stream (see docs/events.md).
public enum Event: Sendable {
    case user(id: Int64, handle: String, displayName: String, createdAt: Int64?)
    case conversation(id: Int64, kind: String, title: String?, createdBy: Int64?, createdAt: Int64?)
    case join(conversation: Int64, user: Int64, at: Int64, role: String)
    case leave(conversation: Int64, user: Int64, at: Int64)
    case message(conversation: Int64, id: Int64, sender: Int64, sentAt: Int64, kind: String, body: String?, replyTo: Int64?,
                 clientID: String?, media: [UInt8]?, editedAt: Int64?, deletedAt: Int64?)
    case receipt(conversation: Int64, message: Int64, recipient: Int64, at: Int64, read: Bool)
    case presence(user: Int64, at: Int64, state: String, device: String)
    case media(conversation: Int64, sha256: [UInt8], size: Int64, mime: String, fileName: String?, data: [UInt8]?)

    /// The event's type name as written in the stream.
    public var typeName: String {
        switch self {
        case .user: return "user"
        case .conversation: return "conversation"
        case .join: return "join"
        case .leave: return "leave"
        case .message: return "message"
        case .receipt(_, _, _, _, let read): return read ? "read" : "delivered"
        case .presence: return "presence"
        case .media: return "media"
        }
    }
}

/// Why a line was rejected.
public struct EventError: Error, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

extension Event {
    /// Builds an event from a parsed line, checking every field's presence and type.
    public static func from(_ o: FlatObject) throws -> Event {
        func str(_ k: String) throws -> String {
            guard let v = o[k] else { throw EventError("missing field \"\(k)\"") }
            guard case .string(let s) = v else { throw EventError("field \"\(k)\" must be a string") }
            return s
        }
        func optStr(_ k: String) throws -> String? {
            guard let v = o[k], v != .null else { return nil }
            guard case .string(let s) = v else { throw EventError("field \"\(k)\" must be a string or null") }
            return s
        }
        func int(_ k: String) throws -> Int64 {
            guard let v = o[k] else { throw EventError("missing field \"\(k)\"") }
            guard case .number(let s) = v, let n = Int64(s) else { throw EventError("field \"\(k)\" must be an integer") }
            return n
        }
        func optInt(_ k: String) throws -> Int64? {
            guard let v = o[k], v != .null else { return nil }
            guard case .number(let s) = v, let n = Int64(s) else { throw EventError("field \"\(k)\" must be an integer or null") }
            return n
        }
        func parsedTime(_ k: String, _ s: String) throws -> Int64 {
            guard let t = PostgresTimestampParser.micros(s) else {
                throw EventError("field \"\(k)\" is not an ISO 8601 timestamp with a zone and a real date and time: \(s.prefix(40))")
            }
            guard PostgresTimestampParser.accepted.contains(t) else {
                throw EventError("field \"\(k)\" is out of range (1970-01-01 to 2099-12-31 UTC): \(s.prefix(40))")
            }
            return t
        }
        func time(_ k: String) throws -> Int64 { try parsedTime(k, try str(k)) }
        func optTime(_ k: String) throws -> Int64? {
            guard let s = try optStr(k) else { return nil }
            return try parsedTime(k, s)
        }
        func oneOf(_ k: String, _ allowed: [String], default d: String? = nil) throws -> String {
            let v = d == nil ? try str(k) : (try optStr(k) ?? d!)
            guard allowed.contains(v) else { throw EventError("field \"\(k)\" must be one of \(allowed.joined(separator: ", ")), got \(v.prefix(20))") }
            return v
        }
        func sha(_ k: String, optional: Bool) throws -> [UInt8]? {
            guard let s = optional ? try optStr(k) : try str(k) else { return nil }
            guard let b = hexBytes(s), b.count == 32 else { throw EventError("field \"\(k)\" must be 64 hex digits (sha256)") }
            return b
        }
        switch try str("type") {
        case "user":
            let handle = try str("handle")
            return .user(id: try int("user_id"), handle: handle, displayName: try optStr("display_name") ?? handle, createdAt: try optTime("created_at"))
        case "conversation":
            return .conversation(id: try int("conversation_id"), kind: try oneOf("kind", ["direct", "group"]), title: try optStr("title"),
                                 createdBy: try optInt("created_by"), createdAt: try optTime("created_at"))
        case "join":
            return .join(conversation: try int("conversation_id"), user: try int("user_id"), at: try time("at"),
                         role: try oneOf("role", ["owner", "admin", "member"], default: "member"))
        case "leave":
            return .leave(conversation: try int("conversation_id"), user: try int("user_id"), at: try time("at"))
        case "message":
            return .message(conversation: try int("conversation_id"), id: try int("message_id"), sender: try int("sender_id"),
                            sentAt: try time("sent_at"), kind: try oneOf("kind", ["text", "media", "system"], default: "text"),
                            body: try optStr("body"), replyTo: try optInt("reply_to_id"), clientID: try optStr("client_message_id"),
                            media: try sha("media_sha256", optional: true), editedAt: try optTime("edited_at"), deletedAt: try optTime("deleted_at"))
        case "delivered", "read":
            return .receipt(conversation: try int("conversation_id"), message: try int("message_id"), recipient: try int("recipient_id"),
                            at: try time("at"), read: try str("type") == "read")
        case "presence":
            return .presence(user: try int("user_id"), at: try time("at"), state: try oneOf("state", ["online", "offline"]),
                             device: try optStr("device_id") ?? "default")
        case "media":
            var data: [UInt8]?
            if let b64 = try optStr("data_base64") {
                guard let d = Data(base64Encoded: b64) else { throw EventError("field \"data_base64\" is not valid base64") }
                data = [UInt8](d)
            }
            let digest = try sha("sha256", optional: false)!
            if let data, SHA256.hash(data).bytes != digest { throw EventError("data_base64 does not match sha256") }
            let size = try int("size_bytes")
            guard size >= 0 else { throw EventError("field \"size_bytes\" must not be negative: \(size)") }
            if let data, Int64(data.count) != size { throw EventError("size_bytes \(size) does not match data (\(data.count) bytes)") }
            return .media(conversation: try int("conversation_id"), sha256: digest, size: size,
                          mime: try str("mime_type"), fileName: try optStr("file_name"), data: data)
        case let other:
            throw EventError("unknown event type \"\(other.prefix(30))\"")
        }
    }
}

func hexBytes(_ s: String) -> [UInt8]? {
    let u = Array(s.utf8)
    guard u.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    func nib(_ c: UInt8) -> UInt8? {
        switch c { case 48...57: return c - 48; case 97...102: return c - 87; case 65...70: return c - 55; default: return nil }
    }
    var i = 0
    while i < u.count {
        guard let h = nib(u[i]), let l = nib(u[i + 1]) else { return nil }
        out.append(h << 4 | l)
        i += 2
    }
    return out
}

/// ISO 8601 timestamps (`2026-11-29T10:00:00Z`, with fraction or offset) to microseconds.
enum PostgresTimestampParser {
    /// The instants an event may carry: from 1970 up to (not including) 2100. Earlier or later
    /// times are mistakes (a year 0, a 3-digit year, an epoch in milliseconds) and would land in
    /// a default partition or ask for a partition no retention ever reaches.
    static let accepted: Range<Int64> = 0..<(4_102_444_800 * 1_000_000)

    static func micros(_ s: String) -> Int64? {
        // A date, a time and a zone are required: local times without an offset are ambiguous.
        let u = Array(s.utf8)
        guard u.count >= 20, u.last == UInt8(ascii: "Z") || u[19...].contains(UInt8(ascii: "+")) || u[19...].contains(UInt8(ascii: "-")) else { return nil }
        return PostgresTimestamp.parseMicroseconds(s)
    }
}
