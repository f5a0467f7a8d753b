import ChatStore
import ChatStorePostgres
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

    /// Last seen's receipt cells: the bucket width, and how a sent day's changed cells are recounted.
    @Test func receiptCellLayoutAndRecountMode() {
        // 64 conversation ranges at most, each split into 64 windows of the day.
        #expect(LastSeenCells.layout(lowestID: 1, highestID: 4566) == .init(shift: 7, buckets: 36, windowBits: 6))
        #expect(LastSeenCells.layout(lowestID: 1, highestID: 4566).cells == 2304)
        #expect(LastSeenCells.layout(lowestID: 100, highestID: 300) == .init(shift: 2, buckets: 51))
        let wide = LastSeenCells.layout(lowestID: Int64.min, highestID: Int64.max)
        #expect(wide.cells <= LastSeenCells.targetBuckets && wide.shift <= 62)
        let l = LastSeenCells.Layout(shift: 7, buckets: 36)
        // A sent day without cells yet (tonight's new day) is recounted whole.
        #expect(LastSeenCells.mode(changedBuckets: 3, changedReceipts: 0, receipts: 0, layout: l, citus: false) == .all)
        #expect(LastSeenCells.mode(changedBuckets: 600, changedReceipts: 10, receipts: 100_000, layout: l, citus: false) == .all)
        #expect(LastSeenCells.mode(changedBuckets: 4, changedReceipts: 30_000, receipts: 100_000, layout: l, citus: false) == .all)
        // A few late reads in big groups: one pass; in small conversations: by key (not on Citus).
        #expect(LastSeenCells.mode(changedBuckets: 4, changedReceipts: 15_000, receipts: 100_000, layout: l, citus: false) == .filtered)
        #expect(LastSeenCells.mode(changedBuckets: 40, changedReceipts: 2_000, receipts: 100_000, layout: l, citus: false) == .byKey)
        #expect(LastSeenCells.mode(changedBuckets: 40, changedReceipts: 2_000, receipts: 100_000, layout: l, citus: true) == .filtered)
    }

    /// The build's ranges cover every receipt once: each partition, and around them only where
    /// the default partition holds rows.
    @Test func receiptCellBuildRangesCoverTheDefaultPartitionOnce() {
        let d = { (i: Double) in Date(timeIntervalSince1970: 1_800_000_000 + i * 86_400) }
        let parts = [(from: d(1), to: d(2)), (from: d(2), to: d(3)), (from: d(5), to: d(6))]
        #expect(LastSeenCells.ranges(partitions: parts, defaultRows: nil).map { [$0.from, $0.to] } == parts.map { [$0.from, $0.to] })
        let r = LastSeenCells.ranges(partitions: parts, defaultRows: (d(0), d(7)))
        #expect(r.map { [$0.from, $0.to] } == [[d(0), d(1)], [d(1), d(2)], [d(2), d(3)], [d(3), d(5)], [d(5), d(6)], [d(6), d(7).addingTimeInterval(1)]])
        #expect(LastSeenCells.ranges(partitions: [], defaultRows: nil).isEmpty)
    }

    @Test func theStretchesNoChunkCoversRunFromMinusToPlusInfinity() {
        #expect(JobChunking.gaps([]).map { "\($0.lo)|\($0.hi)" } == ["-infinity|infinity"])
        let gaps = JobChunking.gaps([("a", "b"), ("b", "c"), ("e", "f")])
        #expect(gaps.map { "\($0.lo)|\($0.hi)" } == ["-infinity|a", "c|e", "f|infinity"])
    }

    /// A window's chunks cover it exactly, in order: the days with rows (clipped to the window)
    /// and the stretches without, so every receipt filed in the window is in one chunk.
    @Test func aWindowsChunksCoverItExactlyInOrder() {
        let mon = Date(timeIntervalSince1970: 1_764_547_200)   // 2025-12-01 00:00 UTC (a Monday)
        let day = 86_400.0
        let f = { (d: Date) in PostgresTimestamp.format(d) }
        let chunks = JobChunking.windowChunks([(mon, 50_000), (mon.addingTimeInterval(3 * day), 40_000)],
                                              from: mon.addingTimeInterval(-day / 2), to: mon.addingTimeInterval(3.5 * day))
        #expect(chunks.map { "\($0.lo)|\($0.hi)|\($0.rows)" } == [
            "\(f(mon.addingTimeInterval(-day / 2)))|\(f(mon))|0",
            "\(f(mon))|\(f(mon.addingTimeInterval(day)))|50000",
            "\(f(mon.addingTimeInterval(day)))|\(f(mon.addingTimeInterval(3 * day)))|0",
            "\(f(mon.addingTimeInterval(3 * day)))|\(f(mon.addingTimeInterval(3.5 * day)))|40000",
        ])
        let open = JobChunking.windowChunks([(mon, 5)], from: nil, to: nil)
        #expect(open.map { "\($0.lo)|\($0.hi)|\($0.rows)" } == ["-infinity|\(f(mon))|0", "\(f(mon))|\(f(mon.addingTimeInterval(day)))|5", "\(f(mon.addingTimeInterval(day)))|infinity|0"])
        #expect(JobChunking.windowChunks([], from: nil, to: nil).map { "\($0.lo)|\($0.hi)" } == ["-infinity|infinity"])
    }
}
