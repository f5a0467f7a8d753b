import ArgumentParser
import Foundation

/// A duration on the command line: a number with a unit, `500ms`, `30s`, `5m`, `2h`, `7d`, `2w`.
/// A bare number means seconds (what the flags that took seconds always meant).
struct DurationArgument: ExpressibleByArgument, CustomStringConvertible, Sendable {
    var seconds: Double
    /// Whether the text had a unit (ages of data require one).
    var hadUnit = true

    init(seconds: Double) { self.seconds = seconds }

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 7 * 86_400)]
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            // "5ms" also ends in "s": the longer unit is tried first, so "ms" wins.
            guard let n = Double(number), n >= 0, n.isFinite, !number.hasPrefix("+") else { continue }
            seconds = n * factor
            return
        }
        guard let n = Double(text), n >= 0, n.isFinite, !text.hasPrefix("+") else { return nil }
        seconds = n
        hadUnit = false
    }

    var duration: Duration { .milliseconds(Int64((seconds * 1000).rounded())) }
    var description: String {
        if seconds >= 86_400, seconds.truncatingRemainder(dividingBy: 86_400) == 0 { return "\(Int(seconds / 86_400))d" }
        if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
    }
    var defaultValueDescription: String { description }
    static var allValueStrings: [String] { [] }
}
