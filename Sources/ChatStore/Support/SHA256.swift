import Crypto
import Foundation

/// Streaming SHA-256, used for migration checksums, archive manifests and media hashes: a thin
/// wrapper over swift-crypto's (BoringSSL's hardware-accelerated SHA-256 on Linux, CryptoKit on
/// Apple platforms) that keeps the hex and byte-array forms the rest of the code uses.
///
/// ```swift
/// var h = SHA256()
/// h.update(bytes)
/// let hex = h.finalize().hex
/// ```
public struct SHA256 {
    private var hasher = Crypto.SHA256()

    public init() {}

    /// Feeds bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    /// Feeds bytes.
    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) } }

    /// Feeds the UTF-8 bytes of a string.
    public mutating func update(_ text: String) { update(Array(text.utf8)) }

    /// The digest of everything fed so far.
    public func finalize() -> Digest { Digest(bytes: Array(hasher.finalize())) }

    /// Hashes bytes in one call.
    public static func hash(_ bytes: [UInt8]) -> Digest { Digest(bytes: Array(Crypto.SHA256.hash(data: bytes))) }

    /// Hashes the UTF-8 bytes of a string.
    public static func hash(_ text: String) -> Digest { hash(Array(text.utf8)) }

    /// A SHA-256 digest.
    public struct Digest: Sendable, Equatable, CustomStringConvertible {
        public let bytes: [UInt8]
        public init(bytes: [UInt8]) { self.bytes = bytes }
        /// Lower-case hex.
        public var hex: String {
            let digits = Array("0123456789abcdef".utf8)
            var s = [UInt8]()
            s.reserveCapacity(64)
            for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
            return String(decoding: s, as: UTF8.self)
        }
        public var description: String { hex }
    }
}
