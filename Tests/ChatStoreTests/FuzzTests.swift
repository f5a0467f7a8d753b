import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import ChatStoreZstd
import Foundation
import Testing

/// Mutation fuzzing of everything that reads input we do not control: the NDJSON line parser and
/// event decoder, the WhatsApp and Telegram parsers, and the archive manifest and media index
/// readers. A trap (overflow, bad cast, negative range) would crash the test process, so getting
/// through is the first assertion; each input must also end in a value or in an error that says
/// where, and good input must round-trip.
///
/// CI runs a fixed seed and a bounded number of iterations per target (README, "Fuzzing"). By hand:
/// `CHATSTORE_FUZZ_ITERATIONS=200000 CHATSTORE_FUZZ_SEED=$RANDOM swift test --filter FuzzTests`.
@Suite struct FuzzTests {
    static var iterations: Int { Int(ProcessInfo.processInfo.environment["CHATSTORE_FUZZ_ITERATIONS"] ?? "") ?? 10_000 }
    static var seed: UInt64 { UInt64(ProcessInfo.processInfo.environment["CHATSTORE_FUZZ_SEED"] ?? "") ?? 20_261_201 }

    /// Fragments that break parsers: structure, escapes, extreme numbers and dates, bad UTF-8.
    static let tokens: [[UInt8]] = [
        "\"", "\\", "{", "}", "[", "]", ",", ":", "\\u0000", "\\ud800", "\\u12G4", "-", "+", ".", "e", "E",
        "9223372036854775807", "-9223372036854775808", "18446744073709551616", "1e400", "-0", "007",
        "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-02-30", "33:99:99", "+99:99", "null", "true",
        "1e300", "-1", "\"date_unixtime\":\"9223372036854775807\"", "\n", "\r", "\t",
        "١٢", "٢٠٢١", "०९", "۵", "٠", "99999",
    ].map { Array($0.utf8) } + [[0xFF], [0xC3], [0xEF, 0xBB, 0xBF], [0xED, 0xA0, 0x80], [0]]

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + rng.int(2)) {
            let at = rng.int(b.count + 1)
            switch rng.int(7) {
            case 6:
                // An ASCII digit written in another script (Arabic-Indic, Devanagari, Persian):
                // what phones set to those languages export.
                if let d = b[min(at, b.count)...].firstIndex(where: { (48...57).contains($0) }) {
                    let zero: [UInt32] = [0x660, 0x966, 0x6F0]
                    let scalar = Unicode.Scalar(zero[rng.int(zero.count)] + UInt32(b[d] - 48))!
                    b.replaceSubrange(d...d, with: Array(String(Character(scalar)).utf8))
                }
            case 0 where !b.isEmpty: b[min(at, b.count - 1)] ^= UInt8(1 << rng.int(8))
            case 1: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
            case 2 where !b.isEmpty: b.removeSubrange(at..<min(b.count, at + 1 + rng.int(8)))
            case 3: b.insert(contentsOf: tokens[rng.int(tokens.count)], at: at)
            case 4 where b.count > 2:
                let s = rng.int(b.count - 1), e = min(b.count, s + 1 + rng.int(16))
                b.insert(contentsOf: Array(b[s..<e]), at: at)
            default:
                // Replace a number or a quoted value with a token.
                if let q = b[min(at, b.count)...].firstIndex(where: { $0 == 58 }) {
                    b.insert(contentsOf: tokens[rng.int(tokens.count)], at: min(b.count, q + 1))
                }
            }
        }
        return b
    }

    @Test func ndjsonLinesNeverTrapAndEveryErrorSaysWhere() throws {
        var rng = SplitMix64(state: Self.seed)
        let today = String(PostgresTimestamp.format(PartitionGranularity.day.floor(Date())).prefix(10))
        let lines = goodEvents.replacingOccurrences(of: "TODAY", with: today).split(separator: "\n").map { Array($0.utf8) }
        var parsed = 0, rejected = 0
        let t0 = Date()
        for _ in 0..<Self.iterations {
            let line = Self.mutate(lines[rng.int(lines.count)], &rng)
            do {
                let obj = try line.withUnsafeBytes { try FlatJSON.parse($0) }
                do { _ = try Event.from(obj); parsed += 1 } catch let e as EventError {
                    rejected += 1
                    #expect(!e.reason.isEmpty)
                }
            } catch let e as FlatJSON.ParseError {
                rejected += 1
                #expect(e.column >= 1 && e.column <= line.count + 1, "column \(e.column) of a \(line.count)-byte line")
            }
        }
        #expect(parsed + rejected == Self.iterations)
        print("fuzz ndjson: \(Self.iterations) lines (seed \(Self.seed)) in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s: \(parsed) parsed, \(rejected) rejected")
    }

    /// Random well-formed objects (strings with any code point but NUL, RFC 8259 numbers,
    /// nested values) survive serialization and parsing unchanged.
    @Test func wellFormedObjectsRoundTrip() throws {
        var rng = SplitMix64(state: Self.seed ^ 0xABCD)
        func randomString() -> String {
            var s = ""
            for _ in 0..<rng.int(12) {
                switch rng.int(4) {
                case 0: s.unicodeScalars.append(Unicode.Scalar(UInt8(1 + rng.int(126))))
                case 1: s.unicodeScalars.append(Unicode.Scalar(UInt32(0xA0 + rng.int(0xD000)))!)
                case 2: s.unicodeScalars.append(Unicode.Scalar(UInt32(0x1F300 + rng.int(0x300)))!)
                default: s += ["\"", "\\", "/", "\t", "\n", "\u{1}"][rng.int(6)]
                }
            }
            return s
        }
        func quoted(_ s: String) -> String {
            String(decoding: try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed]), as: UTF8.self).dropFirst().dropLast().description
        }
        func randomNumber() -> String {
            var n = (rng.int(2) == 0 ? "-" : "") + (rng.int(4) == 0 ? "0" : String(1 + rng.int(9)) + String(rng.next() % 1_000_000))
            if rng.int(3) == 0 { n += "." + String(rng.int(1000)) }
            if rng.int(4) == 0 { n += ["e", "E", "e+", "e-"][rng.int(4)] + String(rng.int(300)) }
            return n
        }
        for _ in 0..<Self.iterations {
            var fields: [(String, FlatJSONValue, String)] = []
            for k in 0..<(1 + rng.int(6)) {
                let key = "k\(k)" + randomString()
                switch rng.int(5) {
                case 0: let s = randomString(); fields.append((key, .string(s), quoted(s)))
                case 1: let n = randomNumber(); fields.append((key, .number(n), n))
                case 2: let v = rng.int(2) == 0; fields.append((key, .bool(v), v ? "true" : "false"))
                case 3: fields.append((key, .null, "null"))
                default:
                    let nested = "[\(randomNumber()), \(quoted(randomString())), {\"a\": [null, true, {}]}]"
                    fields.append((key, .nested(nested), nested))
                }
            }
            let text = "{" + fields.map { "\(quoted($0.0)): \($0.2)" }.joined(separator: ", ") + "}"
            let obj = try Array(text.utf8).withUnsafeBytes { try FlatJSON.parse($0) }
            #expect(obj.keys == fields.map(\.0))
            for f in fields { #expect(obj[f.0] == f.1, "\(text)") }
        }
    }

    @Test func whatsAppExportsNeverTrapAndProblemsNameTheirLine() throws {
        var rng = SplitMix64(state: Self.seed ^ 1)
        let dir = TestPaths.packageRoot + "/Tests/Fixtures/whatsapp/"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted().map { Array(try Data(contentsOf: URL(fileURLWithPath: dir + $0))) }
        let t0 = Date()
        for _ in 0..<Self.iterations {
            let bytes = Self.mutate(files[rng.int(files.count)], &rng)
            let text = String(decoding: bytes, as: UTF8.self)
            let chat = WhatsAppImporter().parse(text: text, fileName: "fuzz.txt")
            let lineCount = text.split(separator: "\n", omittingEmptySubsequences: false).count
            for (line, reason) in chat.problems { #expect(line >= 1 && line <= lineCount && !reason.isEmpty) }
            for m in chat.validated().messages { #expect(m.line >= 1 && m.line <= lineCount) }
        }
        print("fuzz whatsapp: \(Self.iterations) exports in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s")
    }

    @Test func telegramExportsNeverTrap() throws {
        var rng = SplitMix64(state: Self.seed ^ 2)
        let dir = TestPaths.packageRoot + "/Tests/Fixtures/telegram/"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted().map { Array(try Data(contentsOf: URL(fileURLWithPath: dir + $0))) }
        var parsed = 0, refused = 0
        let t0 = Date()
        for _ in 0..<Self.iterations {
            let bytes = Self.mutate(files[rng.int(files.count)], &rng)
            do {
                for chat in try TelegramImporter().parse(data: Data(bytes), fileName: "fuzz.json") {
                    for (_, reason) in chat.validated().problems { #expect(!reason.isEmpty) }
                }
                parsed += 1
            } catch {
                refused += 1
                #expect(!String(describing: error).isEmpty)
            }
        }
        print("fuzz telegram: \(Self.iterations) exports in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s: \(parsed) parsed, \(refused) refused")
    }

    /// A real archive with its manifest and media index mutated: verify never traps, and never
    /// passes a manifest that is not JSON or lists other files, nor a changed index.
    @Test func archiveManifestsAndIndexesNeverTrap() throws {
        let base = try TestPaths.temporaryDirectory()
        var archive = ""
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 40, days: 2, anomalyRate: 0)
            let p = try PartitionManager(logger: TestDatabase.logger).partitions(conn, parent: "messages").first {
                try conn.scalar(Bool.self, SQL(unsafeRaw: "SELECT EXISTS (SELECT 1 FROM chat.\(conn.quoteIdentifier($0.name)))"))
            }!
            (_, archive) = try ArchiveExporter(logger: TestDatabase.logger).export(conn, partition: p.name, into: base)
        }
        let manifest = Array(try Data(contentsOf: URL(fileURLWithPath: archive + "/manifest.json")))
        var index: [UInt8] = []
        try ZstdDecompressor.decompressFile(path: archive + "/media.index.ndjson.zst") { index.append(contentsOf: $0) }
        #expect(try ArchiveVerifier().verify(path: archive, connection: nil).ok)
        var rng = SplitMix64(state: Self.seed ^ 3)
        let n = max(50, Self.iterations / 20)
        let t0 = Date()
        for i in 0..<n {
            let work = base + "/fuzz-\(i)"
            try? FileManager.default.removeItem(atPath: work)
            try FileManager.default.copyItem(atPath: archive, toPath: work)
            if i % 2 == 0 {
                let m = Self.mutate(manifest, &rng)
                try Data(m).write(to: URL(fileURLWithPath: work + "/manifest.json"))
                // A manifest that is no longer JSON, or no longer lists the same files, fails.
                let r = try ArchiveVerifier().verify(path: work, connection: nil)
                let json = (try? JSONSerialization.jsonObject(with: Data(m))) as? [String: Any]
                let original = (try? JSONSerialization.jsonObject(with: Data(manifest))) as? [String: Any]
                if json == nil || (json?["files"] as? NSArray) != (original?["files"] as? NSArray) {
                    #expect(!r.ok, "a manifest with other files passed: \(String(decoding: m, as: UTF8.self).prefix(300))")
                }
            } else {
                let m = Self.mutate(index, &rng)
                try Data(try Zstd.compress(m)).write(to: URL(fileURLWithPath: work + "/media.index.ndjson.zst"))
                // The index file changed, so its size or sha256 no longer matches the manifest.
                let r = try ArchiveVerifier().verify(path: work, connection: nil)
                #expect(m == index || !r.ok)
            }
            try? FileManager.default.removeItem(atPath: work)
        }
        print("fuzz archive: \(n) mutated manifests and indexes in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s")
    }
}
