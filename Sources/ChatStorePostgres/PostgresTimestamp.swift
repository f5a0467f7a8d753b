import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Formats and parses `timestamptz` text in the ISO form the layer sets on every session
/// (`DateStyle = ISO, YMD`, `TimeZone = UTC`).
public enum PostgresTimestamp {
    /// `2026-11-29 09:36:59.123456+00`, always UTC with microseconds.
    public static func format(_ date: Date) -> String {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        return format(microsecondsSinceEpoch: Int64(micros))
    }

    /// ISO 8601 as `row_to_json` writes timestamps (`2026-11-29T09:36:59.123456+00:00`): for JSON
    /// and manifests, so every timestamp chatstore writes to a file has one form.
    public static func iso8601(_ date: Date) -> String {
        format(date).replacingOccurrences(of: " ", with: "T") + ":00"
    }

    /// Formats microseconds since the Unix epoch as UTC text.
    public static func format(microsecondsSinceEpoch us: Int64) -> String {
        var secs = us / 1_000_000
        var frac = us % 1_000_000
        if frac < 0 { frac += 1_000_000; secs -= 1 }
        var t = time_t(secs)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        let fracStr = String(frac)
        return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2)) "
            + "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2))."
            + String(repeating: "0", count: 6 - fracStr.count) + fracStr + "+00"
    }

    /// Parses ISO `timestamptz` output (`YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]]`) or a date
    /// (`YYYY-MM-DD`, taken as UTC midnight). Returns microseconds since the epoch, or nil.
    /// Whether the fields name a real instant of the proleptic Gregorian calendar: years 1-9999,
    /// months 1-12, the month's days (29 February only in leap years), hours 0-23, minutes and
    /// seconds 0-59.
    public static func isValid(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) -> Bool {
        guard (1...9999).contains(year), (1...12).contains(month), (0...23).contains(hour),
              (0...59).contains(minute), (0...59).contains(second) else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return (1...days).contains(day)
    }

    public static func parseMicroseconds(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        var i = 0
        func num(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in 0..<n {
                let c = b[i + k]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = num(4), expect(45), let month = num(2), expect(45), let day = num(2) else { return nil }
        var hour = 0, minute = 0, second = 0, micros = 0, offsetSeconds = 0
        if i < b.count {
            guard expect(32) || expect(84) else { return nil }
            guard let h = num(2), expect(58), let m = num(2), expect(58), let s = num(2) else { return nil }
            hour = h; minute = m; second = s
            if i < b.count, b[i] == 46 {
                i += 1
                var digits = 0
                while i < b.count, b[i] >= 48, b[i] <= 57 {
                    if digits < 6 { micros = micros * 10 + Int(b[i] - 48) }
                    digits += 1
                    i += 1
                }
                for _ in digits..<max(digits, 6) { micros *= 10 }
            }
            if i < b.count {
                if b[i] == 90 { i += 1 } else {
                    let sign: Int
                    if b[i] == 43 { sign = 1 } else if b[i] == 45 { sign = -1 } else { return nil }
                    i += 1
                    guard let oh = num(2) else { return nil }
                    var off = oh * 3600
                    if expect(58) { guard let om = num(2), om < 60 else { return nil }; off += om * 60 }
                    if expect(58) { guard let os = num(2), os < 60 else { return nil }; off += os }
                    offsetSeconds = sign * off
                }
            }
            guard i == b.count else { return nil }
        }
        // A real calendar date and clock time (no 2026-02-30, 33:99:99 or +05:60): timegm would
        // silently normalise them to other instants.
        guard PostgresTimestamp.isValid(year: year, month: month, day: day, hour: hour, minute: minute, second: second),
              abs(offsetSeconds) < 16 * 3600, (abs(offsetSeconds) / 60) % 60 < 60 else { return nil }
        var tmv = tm()
        tmv.tm_year = Int32(year - 1900)
        tmv.tm_mon = Int32(month - 1)
        tmv.tm_mday = Int32(day)
        tmv.tm_hour = Int32(hour)
        tmv.tm_min = Int32(minute)
        tmv.tm_sec = Int32(second)
        let epoch = Int64(timegm(&tmv)) - Int64(offsetSeconds)
        return epoch * 1_000_000 + Int64(micros)
    }

    /// Parses ISO `timestamptz` text into a `Date`.
    public static func parse(_ text: String) -> Date? {
        parseMicroseconds(text).map { Date(timeIntervalSince1970: Double($0) / 1_000_000) }
    }
}
