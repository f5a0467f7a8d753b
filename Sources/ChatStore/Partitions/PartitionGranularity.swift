import Foundation

/// The width of one partition: a UTC day, an ISO week (from Monday) or a calendar month.
public enum PartitionGranularity: String, Codable, Sendable, CaseIterable {
    case day, week, month

    private static let calendar: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        c.firstWeekday = 2
        return c
    }()

    /// The start of the interval holding `date`.
    public func floor(_ date: Date) -> Date {
        let c = PartitionGranularity.calendar
        switch self {
        case .day: return c.startOfDay(for: date)
        case .week:
            let start = c.startOfDay(for: date)
            let weekday = c.component(.weekday, from: start) // 1 = Sunday
            let back = (weekday + 5) % 7
            return c.date(byAdding: .day, value: -back, to: start)!
        case .month:
            return c.date(from: c.dateComponents([.year, .month], from: date))!
        }
    }

    /// The start of the next interval after the one holding `date`.
    public func next(_ date: Date) -> Date {
        let c = PartitionGranularity.calendar
        let f = floor(date)
        switch self {
        case .day: return c.date(byAdding: .day, value: 1, to: f)!
        case .week: return c.date(byAdding: .day, value: 7, to: f)!
        case .month: return c.date(byAdding: .month, value: 1, to: f)!
        }
    }

    /// Partition suffix for an interval start: `p20261129`.
    public static func suffix(_ date: Date) -> String {
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "p%04d%02d%02d", c.year!, c.month!, c.day!)
    }
}
