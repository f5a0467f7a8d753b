import CChatStoreZstd
import Foundation

/// An error from the zstd layer: a libzstd error (with its name), truncated input, or I/O.
public struct ZstdError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable { case library, truncated, corrupt, checksum, io, dictionary, usage }
        private let base: Base
        private init(_ b: Base) { base = b }
        /// libzstd reported an error not covered by a more specific kind.
        public static let library = Kind(.library)
        /// The input ended in the middle of a frame.
        public static let truncated = Kind(.truncated)
        /// The input is not valid zstd data.
        public static let corrupt = Kind(.corrupt)
        /// A frame's content checksum did not match.
        public static let checksum = Kind(.checksum)
        /// Reading or writing a file failed.
        public static let io = Kind(.io)
        /// Dictionary training or loading failed, or the wrong dictionary was used.
        public static let dictionary = Kind(.dictionary)
        /// The API was called in a way that cannot work.
        public static let usage = Kind(.usage)
        public var description: String { base.rawValue }
    }

    public var kind: Kind
    public var message: String
    /// Byte offset in the compressed input where the problem was detected, when known.
    public var offset: Int64?
    /// The file involved, when known.
    public var path: String?

    public init(kind: Kind, message: String, offset: Int64? = nil, path: String? = nil) {
        self.kind = kind
        self.message = message
        self.offset = offset
        self.path = path
    }

    public var description: String {
        var s = ""
        if let path { s += "\(path): " }
        s += message
        if let offset { s += " (at compressed byte \(offset))" }
        return s
    }

    public var errorDescription: String? { description }

    /// Throws when `code` is a libzstd error code.
    static func check(_ code: Int, _ what: String) throws {
        if ZSTD_isError(code) != 0 { throw from(code, what) }
    }

    static func from(_ code: Int, _ what: String) -> ZstdError {
        let name = String(cString: ZSTD_getErrorName(code))
        let ec = ZSTD_getErrorCode(code)
        let kind: Kind
        switch ec {
        case ZSTD_error_checksum_wrong: kind = .checksum
        case ZSTD_error_corruption_detected, ZSTD_error_prefix_unknown, ZSTD_error_frameParameter_unsupported,
             ZSTD_error_literals_headerWrong, ZSTD_error_srcSize_wrong:
            kind = .corrupt
        case ZSTD_error_dictionary_wrong, ZSTD_error_dictionary_corrupted, ZSTD_error_dictionaryCreation_failed:
            kind = .dictionary
        default: kind = .library
        }
        return ZstdError(kind: kind, message: "\(what): \(name)")
    }
}
