import CChatStoreZstd
import Foundation

/// A zstd dictionary: trained from samples of small records, or loaded from a file written by
/// `zstd --train`. Small records (~1 KB) compress several times better with one.
public struct ZstdDictionary: Sendable, Equatable {
    /// The dictionary bytes (the format `zstd --train` writes).
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// The dictionary id stamped in frames compressed with it (0 for raw content).
    public var id: UInt32 { bytes.withUnsafeBytes { UInt32(ZDICT_getDictID($0.baseAddress, $0.count)) } }

    /// Trains a dictionary from samples.
    /// - Parameters:
    ///   - samples: representative records; aim for about 100 times `capacity` in total.
    ///   - capacity: maximum dictionary size in bytes (100 KB is the CLI's default).
    /// - Throws: `ZstdError` of kind `.dictionary` when there are too few samples.
    public static func train(samples: [[UInt8]], capacity: Int = 112_640) throws -> ZstdDictionary {
        var flat: [UInt8] = []
        var sizes: [Int] = []
        for s in samples { flat.append(contentsOf: s); sizes.append(s.count) }
        var dict = [UInt8](repeating: 0, count: capacity)
        let n = dict.withUnsafeMutableBytes { d in
            flat.withUnsafeBytes { f in
                ZDICT_trainFromBuffer(d.baseAddress, capacity, f.baseAddress, sizes, UInt32(sizes.count))
            }
        }
        if ZDICT_isError(n) != 0 {
            throw ZstdError(kind: .dictionary, message: "training failed: \(String(cString: ZDICT_getErrorName(n))) (\(samples.count) samples, \(flat.count) bytes)")
        }
        return ZstdDictionary(bytes: Array(dict[0..<n]))
    }
}
