/// The generator's record of when each user was active (sent, got or read a message), from which
/// a day's presence sessions are made once the day is generated.
///
/// Memory does not grow with the volume: the current day and the next two keep one bit per user
/// and minute (180 bytes per user per day, 3.7 MB for 20,000 users, however many messages), and
/// the rare activity further ahead (a read days later) is kept as a list. The old form, one
/// 8-byte entry per event, held 112 MB for a day of a million messages.
struct ActivityDays {
    static let wordsPerUser = 23          // 1,440 minutes
    private let users: Int
    private let startUS: Int64
    private var current = 0
    private var dense: [Int: [UInt64]] = [:]           // day → users × 23 words
    private var sparse: [Int: [(user: Int, t: Int64)]] = [:]

    init(users: Int, startUS: Int64) {
        self.users = users
        self.startUS = startUS
    }

    /// Notes that `user` was active at `t` (microseconds since the epoch).
    mutating func note(_ user: Int, _ t: Int64) {
        guard t >= startUS else { return }
        let day = Int((t - startUS) / WorkloadGenerator.usPerDay)
        guard day >= current else { return }     // a day already written (a delivery stamped before its send)
        if day - current <= 2 {
            let minute = Int((t - startUS) % WorkloadGenerator.usPerDay / 60_000_000)
            let w = user * ActivityDays.wordsPerUser + minute >> 6
            if dense[day] == nil { dense[day] = [UInt64](repeating: 0, count: (users + 1) * ActivityDays.wordsPerUser) }
            dense[day]![w] |= 1 << UInt64(minute & 63)
        } else {
            sparse[day, default: []].append((user, t))
        }
    }

    /// Hands each user's activity of `day`, in time order, to `body` (users in ascending order),
    /// then forgets the day. A minute with activity counts from its first to its last microsecond.
    mutating func drain(day: Int, _ body: (Int, [Int64]) throws -> Void) rethrows {
        current = day + 1
        let bits = dense.removeValue(forKey: day)
        let far = (sparse.removeValue(forKey: day) ?? []).sorted { ($0.user, $0.t) < ($1.user, $1.t) }
        let dayStart = startUS + Int64(day) * WorkloadGenerator.usPerDay
        var k = 0
        var times: [Int64] = []
        for u in 0...users {
            times.removeAll(keepingCapacity: true)
            if let bits {
                for j in 0..<ActivityDays.wordsPerUser {
                    var word = bits[u * ActivityDays.wordsPerUser + j]
                    while word != 0 {
                        let minute = Int64(j * 64 + word.trailingZeroBitCount)
                        times.append(dayStart + minute * 60_000_000)
                        times.append(dayStart + minute * 60_000_000 + 59_999_999)
                        word &= word - 1
                    }
                }
            }
            var merged = false
            while k < far.count && far[k].user == u { times.append(far[k].t); k += 1; merged = true }
            if merged { times.sort() }
            if !times.isEmpty { try body(u, times) }
        }
    }
}
