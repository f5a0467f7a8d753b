import ChatStore
import ChatStoreTestSupport
import ChatStoreZstd
import Foundation
import Testing

func sampleData(_ n: Int, seed: UInt64 = 42) -> [UInt8] {
    // Half text-like (compressible), half pseudo-random.
    var x = seed
    var out: [UInt8] = []
    out.reserveCapacity(n)
    let words = ["hello", "message", "delivered", "read", "group", "conversation", "😀", "\n"].map { Array($0.utf8) }
    while out.count < n {
        x = x &* 6364136223846793005 &+ 1442695040888963407
        if (x >> 60) < 12 { out += words[Int((x >> 33) % UInt64(words.count))]; out.append(32) } else { out.append(UInt8(truncatingIfNeeded: x >> 24)) }
    }
    return Array(out.prefix(n))
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func readFile(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

func compressToFile(_ data: [UInt8], _ path: String, settings: ZstdSettings = ZstdSettings()) throws {
    let w = try AtomicFileWriter(path: path)
    let c = try ZstdCompressor(settings: settings)
    var i = 0
    while i < data.count {
        let end = min(i + 100_000, data.count)
        try data[i..<end].withUnsafeBytes { chunk in try c.compress(chunk) { try w.write($0) } }
        i = end
    }
    try c.finish { try w.write($0) }
    try w.commit()
}

@Suite struct ZstdTests {
    @Test(arguments: [ZstdSettings(), ZstdSettings(level: 1, workers: 2), ZstdSettings(level: 19),
                      ZstdSettings(level: 3, longDistanceMatching: true, windowLog: 27)])
    func weWriteTheCLIReads(settings: ZstdSettings) throws {
        let dir = try TestPaths.temporaryDirectory()
        let data = sampleData(3_000_000)
        try compressToFile(data, dir + "/a.zst", settings: settings)
        let t = try runCommand("/usr/bin/zstd", ["-t", "-q", "--long=27", dir + "/a.zst"])
        #expect(t.status == 0, "\(t.stderr)")
        let d = try runCommand("/usr/bin/zstd", ["-d", "-q", "--long=27", dir + "/a.zst", "-o", dir + "/a"])
        #expect(d.status == 0, "\(d.stderr)")
        #expect(try readFile(dir + "/a") == data)
    }

    @Test func theCLIWritesWeRead() throws {
        let dir = try TestPaths.temporaryDirectory()
        let data = sampleData(2_500_000, seed: 7)
        try writeFile(dir + "/b", data)
        for flags in [["-3"], ["-1", "-T2"], ["-19"], ["--no-check", "-3"], ["--long=27", "-3"]] {
            let r = try runCommand("/usr/bin/zstd", flags + ["-q", "-f", dir + "/b", "-o", dir + "/b.zst"])
            #expect(r.status == 0, "\(r.stderr)")
            var out: [UInt8] = []
            try ZstdDecompressor.decompressFile(path: dir + "/b.zst") { out.append(contentsOf: $0) }
            #expect(out == data, "flags \(flags)")
        }
        // Concatenated frames (cat a.zst b.zst) read as one stream.
        let two = try readFile(dir + "/b.zst") + Zstd.compress(Array("tail".utf8))
        #expect(try Zstd.decompress(two) == data + Array("tail".utf8))
    }

    @Test func truncatedInputIsRejected() throws {
        let data = sampleData(500_000)
        let z = try Zstd.compress(data)
        for cut in [1, 10, z.count / 2, z.count - 1] {
            do {
                _ = try Zstd.decompress(Array(z.prefix(cut)))
                Issue.record("truncated at \(cut) was accepted")
            } catch let e as ZstdError {
                #expect(e.kind == .truncated || e.kind == .corrupt, "\(e)")
            }
        }
        #expect(throws: ZstdError.self) { try Zstd.decompress([]) }
    }

    @Test func bitFlipsAreRejected() throws {
        let data = sampleData(300_000, seed: 3)
        let z = try Zstd.compress(data)
        var rejected = 0
        let positions = stride(from: 4, to: z.count, by: max(1, z.count / 40)).map { $0 }
        for pos in positions {
            var bad = z
            bad[pos] ^= 0x10
            do {
                let out = try Zstd.decompress(bad)
                // A flip in a bit the format ignores may pass, but never with different output.
                #expect(out == data, "flip at \(pos) gave different output without an error")
            } catch is ZstdError {
                rejected += 1
            }
        }
        #expect(rejected >= positions.count - 2)
    }

    @Test func dictionaryImprovesSmallRecords() throws {
        var samples: [[UInt8]] = []
        for i in 0..<4000 {
            let rec = "{\"conversation_id\":\(i % 50),\"message_id\":\(1_000_000 + i),\"sender_id\":\(i % 97),\"kind\":\"text\",\"body\":\"see you at \(i % 24):00 ok?\",\"sent_at\":\"2026-11-\(10 + i % 18)T12:\(i % 60):00Z\"}"
            samples.append(Array(rec.utf8))
        }
        let dict = try ZstdDictionary.train(samples: samples, capacity: 16_384)
        #expect(dict.id != 0)
        let probe = samples[1234]
        let plain = try Zstd.compress(probe)
        let withDict = try Zstd.compress(probe, dictionary: dict)
        #expect(withDict.count * 2 < plain.count)
        #expect(try Zstd.decompress(withDict, dictionary: dict) == probe)
        #expect(throws: ZstdError.self) { try Zstd.decompress(withDict) }
    }

    @Test func atomicWriterLeavesNothingWhenAbandoned() throws {
        let dir = try TestPaths.temporaryDirectory()
        do {
            let w = try AtomicFileWriter(path: dir + "/x.zst")
            try w.write([1, 2, 3])
            w.abandon()
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test func sha256MatchesSha256sum() throws {
        let dir = try TestPaths.temporaryDirectory()
        for n in [0, 1, 55, 56, 63, 64, 65, 1000, 1_000_003] {
            let data = sampleData(n, seed: UInt64(n))
            try writeFile(dir + "/h", data)
            let r = try runCommand("/usr/bin/sha256sum", [dir + "/h"])
            var h = SHA256()
            // Feed in uneven pieces to exercise buffering.
            var i = 0
            var step = 1
            while i < data.count {
                let end = min(data.count, i + step)
                data[i..<end].withUnsafeBytes { h.update($0) }
                i = end
                step = step * 3 + 1
            }
            #expect(r.stdout.hasPrefix(h.finalize().hex), "n=\(n)")
        }
        #expect(SHA256.hash("abc").hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}

@Suite struct SpecialFileTests {
    @Test func writingToDevNullLeavesItADevice() throws {
        let w = try AtomicFileWriter(path: "/dev/null")
        try w.write([1, 2, 3])
        try w.commit()
        var st = stat()
        #expect(stat("/dev/null", &st) == 0)
        #expect((st.st_mode & S_IFMT) == S_IFCHR)
    }
}
