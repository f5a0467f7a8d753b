#!/usr/bin/env bash
# Benchmark: SHA-256 throughput, before (our own Swift implementation, as it was at commit 3806e30)
# and after (swift-crypto, which chatstore uses now: BoringSSL's SHA-NI/AVX code on Linux), with
# sha256sum and openssl as references, on the same 512 MiB in one run. Builds a throwaway package
# in a temporary directory (swift-crypto from the same source as chatstore's).
# Usage: scripts/bench/sha256.sh [MIB]   (default 512)
set -euo pipefail
cd "$(dirname "$0")/../.."
mib=${1:-512}
work=$(mktemp -d /tmp/chatstore-bench-sha.XXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/Sources/shabench"
crypto=$(grep -o '.package(url: "https://github.com/apple/swift-crypto", from: "[0-9.]*")' Package.swift)
cat > "$work/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription
let package = Package(name: "shabench", platforms: [.macOS(.v13)],
    dependencies: [$crypto],
    targets: [.executableTarget(name: "shabench", dependencies: [.product(name: "Crypto", package: "swift-crypto")],
                                swiftSettings: [.swiftLanguageMode(.v5)])])
SWIFT
git show 3806e30:Sources/ChatStore/Support/SHA256.swift | sed 's/\bSHA256\b/OldSHA256/g' > "$work/Sources/shabench/OldSHA256.swift"
cat > "$work/Sources/shabench/main.swift" <<'SWIFT'
import Crypto
import Foundation
let mib = Int(CommandLine.arguments[1])!
var chunk = [UInt8](repeating: 0, count: 1 << 20)
for i in chunk.indices { chunk[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
func measure(_ name: String, _ body: () -> String) {
    let t0 = Date()
    let hex = body()
    let s = Date().timeIntervalSince(t0)
    print(String(format: "%@ %.0f MB/s %@", name, Double(mib) * 1.048576 / s, String(hex.prefix(16))))
}
measure("before(own)") {
    var h = OldSHA256()
    for _ in 0..<mib { chunk.withUnsafeBytes { h.update($0) } }
    return h.finalize().hex
}
measure("after(swift-crypto)") {
    var h = Crypto.SHA256()
    for _ in 0..<mib { chunk.withUnsafeBytes { h.update(bufferPointer: $0) } }
    return h.finalize().map { String(format: "%02x", $0) }.joined()
}
// The same bytes to a file, for the command-line references.
FileManager.default.createFile(atPath: CommandLine.arguments[2], contents: nil)
let fh = FileHandle(forWritingAtPath: CommandLine.arguments[2])!
for _ in 0..<mib { fh.write(Data(chunk)) }
try fh.close()
SWIFT
(cd "$work" && swift build -c release -q >/dev/null)
"$work/.build/release/shabench" "$mib" "$work/data" > "$work/out"
cat "$work/data" > /dev/null
ref() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); awk -v m="$mib" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f MB/s", m * 1.048576 / (b - a)}'; }
before=$(awk '$1 == "before(own)" {print $2}' "$work/out"); after=$(awk '$1 == "after(swift-crypto)" {print $2}' "$work/out")
same=$([ "$(awk '$1 == "before(own)" {print $4}' "$work/out")" = "$(awk '$1 == "after(swift-crypto)" {print $4}' "$work/out")" ] && echo "same digest" || echo "DIFFERENT digests")
printf "| implementation | MB/s (%s MiB, in memory) |\n|---|---|\n" "$mib"
printf "| before: our own Swift SHA-256 (commit 3806e30) | %s |\n| after: swift-crypto (BoringSSL), what chatstore uses | %s |\n" "$before" "$after"
printf "| sha256sum (coreutils), from page cache | %s |\n| openssl dgst -sha256, from page cache | %s |\n" "$(ref sha256sum "$work/data")" "$(ref openssl dgst -sha256 "$work/data")"
awk -v a="$before" -v b="$after" -v s="$same" 'BEGIN{printf "\nafter / before: %.1fx (%s)\n", b / a, s}'
