import ChatStore
import Foundation
import Testing

/// How the jobs split the days of their changed rows into statements (no database needed).
@Suite struct DayChunkingTests {
    let monday = Date(timeIntervalSince1970: 1_764_547_200) // 2025-12-01 00:00 UTC
    func day(_ n: Int) -> Date { monday.addingTimeInterval(Double(n) * 86_400) }

    @Test func aQuietDayNextToABusyOneGetsItsOwnChunkWhenProbing() {
        // A week of late reads (a few rows a day) before tonight's busy new day.
        let days = (0..<6).map { (day: day($0), rows: 40) } + [(day: day(6), rows: 15_000)]
        let hashed = JobChunking.dayChunks(days)
        #expect(hashed.count == 1 && hashed[0].rows == 15_240, "without probing: one chunk of the week")
        let probed = JobChunking.dayChunks(days, probing: true)
        #expect(probed.map(\.rows) == [240, 15_000], "\(probed)")
        #expect(probed[0].from == day(0) && probed[0].to == day(6) && probed[1].from == day(6) && probed[1].to == day(7))
        #expect(probed[0].rows <= JobChunking.probeLimit)
    }

    @Test func busyDaysStillShareAChunkAndChunksStayWithinAWeekAndTheRowLimit() {
        let busy = [(day: day(0), rows: 5_000), (day: day(1), rows: 6_000)]
        #expect(JobChunking.dayChunks(busy, probing: true).map(\.rows) == [11_000])
        // Quiet days that add up past the probe limit start a new chunk rather than a hashed one.
        let quiet = (0..<3).map { (day: day($0), rows: 900) }
        #expect(JobChunking.dayChunks(quiet, probing: true).map(\.rows) == [1_800, 900])
        #expect(JobChunking.dayChunks(quiet).map(\.rows) == [2_700])
        // Never more than a week per chunk, never more than maxRows (unless one day alone is).
        let long = (0..<10).map { (day: day($0), rows: 1) }
        #expect(JobChunking.dayChunks(long).map(\.rows) == [7, 3])
        let big = [(day: day(0), rows: 30_000), (day: day(1), rows: 10)]
        #expect(JobChunking.dayChunks(big).map(\.rows) == [30_000, 10])
        // A gap between days: the chunk still ends a day after its last day.
        let gap = JobChunking.dayChunks([(day: day(0), rows: 1), (day: day(3), rows: 1)])
        #expect(gap.count == 1 && gap[0].from == day(0) && gap[0].to == day(4))
    }
}
