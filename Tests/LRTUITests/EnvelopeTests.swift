import Testing
import LRTUI

@Suite struct EnvelopeTests {
    /// A deterministic pseudo-random sequence.
    struct LCG {
        var state: UInt64
        mutating func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
    }

    @Test func exactWhileFineDataIsKept() {
        var rng = LCG(state: 7)
        let values = (0..<5_000).map { _ in rng.next() }
        var s = EnvelopeSeries(retainedBlocks: 8192)
        for (i, v) in values.enumerated() { s.append(step: i + 1, value: v) }
        for (a, b) in [(1, 5000), (17, 4000), (100, 100), (1234, 1300), (4990, 6000)] {
            let slice = values[(a - 1)..<min(b, 5000)]
            let sum = s.summary(in: a...b)!
            #expect(sum.min == slice.min()!)
            #expect(sum.max == slice.max()!)
            #expect(sum.count == slice.count)
            #expect(sum.first == slice.first!)
            #expect(sum.last == slice.last!)
            #expect(abs(sum.mean - slice.reduce(0, +) / Double(slice.count)) < 1e-9)
        }
        #expect(s.summary(in: 6000...7000) == nil)
        #expect(s.value(at: 10) == values[9])
    }

    @Test func memoryIsBoundedForMillionsOfSteps() {
        var s = EnvelopeSeries(retainedBlocks: 256)
        var rng = LCG(state: 1)
        for i in 0..<1_000_000 { s.append(step: i, value: rng.next()) }
        let atOneMillion = s.storedBlockCount
        for i in 1_000_000..<2_000_000 { s.append(step: i, value: rng.next()) }
        #expect(s.storedBlockCount <= EnvelopeSeries.levelCount * 2 * 256)
        #expect(s.storedBlockCount <= atOneMillion + 256)
        #expect(s.approximateBytes < 1_000_000)
        #expect(s.appendedCount == 2_000_000)
    }

    @Test func neverDropsAnExtremeAfterTrimming() {
        var rng = LCG(state: 3)
        let n = 300_000
        var values = (0..<n).map { _ in rng.next() }
        // Spikes in old data that only coarse levels still cover.
        values[1_000] = 50; values[77_777] = -40; values[250_000] = 99
        var s = EnvelopeSeries(retainedBlocks: 64)
        for (i, v) in values.enumerated() { s.append(step: i, value: v) }
        // Random ranges: the summary must contain the true min and max (conservative), and be exact on the recent end.
        for _ in 0..<200 {
            let a = Int(rng.next() * Double(n)), b = min(n - 1, a + Int(rng.next() * 50_000))
            let truth = values[a...b]
            let sum = s.summary(in: a...b)!
            #expect(sum.min <= truth.min()!)
            #expect(sum.max >= truth.max()!)
        }
        #expect(s.summary(in: 0...n)!.max == 99)
        #expect(s.summary(in: 77_000...78_000)!.min == -40)
        #expect(s.summary(in: 900...1_100)!.max == 50)
        // The last 64 steps are still exact.
        let tail = s.summary(in: (n - 64)...(n - 1))!
        #expect(tail.max == values[(n - 64)...].max()!)
        #expect(tail.count == 64)
    }

    @Test func columnsOfAMillionStepsAreFast() {
        var values = [Double](repeating: 1, count: 1_000_000)
        values[654_321] = 1_000
        let s = EnvelopeSeries(startStep: 1, values: values)
        let cols = StepColumns(first: 1, last: 1_000_000, count: 400)
        let clock = ContinuousClock()
        var maxCol = -1
        let t = clock.measure {
            for j in 0..<cols.count {
                if let r = cols.steps(ofColumn: j), let sum = s.summary(in: r), sum.max == 1_000 { maxCol = j }
            }
        }
        #expect(maxCol == cols.column(of: 654_322))
        #expect(t < .seconds(2))  // a few ms in release; generous for debug builds on a shared machine
    }

    @Test func bulkBuildMatchesAppending() {
        var rng = LCG(state: 11)
        let values = (0..<40_000).map { _ in rng.next() * 10 }
        let bulk = EnvelopeSeries(startStep: 5, values: values, retainedBlocks: 128)
        var inc = EnvelopeSeries(retainedBlocks: 128)
        for (i, v) in values.enumerated() { inc.append(step: 5 + i, value: v) }
        for (a, b) in [(5, 40_004), (10_000, 20_000), (39_000, 39_999), (0, 100)] {
            #expect(bulk.summary(in: a...b)?.min == inc.summary(in: a...b)?.min)
            #expect(bulk.summary(in: a...b)?.max == inc.summary(in: a...b)?.max)
        }
        #expect(bulk.storedBlockCount <= EnvelopeSeries.levelCount * 2 * 128)
    }

    @Test func nonFiniteAndOutOfOrderValues() {
        var s = EnvelopeSeries()
        let a1 = s.append(step: 1, value: 1), a2 = s.append(step: 2, value: .nan), a3 = s.append(step: 3, value: 3)
        let again = s.append(step: 3, value: 9)
        #expect(a1 && a2 && a3)
        #expect(!again)
        #expect(s.summary(in: 1...3)?.count == 2)
        #expect(s.summary(in: 1...3)?.max == 3)
        #expect(s.lastStep == 3)
    }

    @Test func trackBranchesOnRollback() {
        var t = MetricTrack()
        for s in 1...100 { t.append(step: s, value: Double(s)) }
        // Roll back to step 50: steps 50... are replaced by new values.
        for s in 50...60 { t.append(step: s, value: -1) }
        #expect(t.lastStep == 60)
        #expect(t.summary(in: 1...100)?.max == 49)
        #expect(t.summary(in: 1...100)?.min == -1)
        #expect(t.value(at: 55) == -1)
        #expect(t.value(at: 10) == 10)
        #expect(t.ghosts.count == 1)
        #expect(t.ghostSources[0].summary(in: 1...200)?.min == 50)
        #expect(t.ghostSources[0].summary(in: 1...200)?.max == 100)
        // A second rollback further back.
        t.append(step: 20, value: 5)
        #expect(t.summary(in: 1...100)?.max == 19)
        // Ghosts: the first branch (50-100), the second (50-60) and the replaced part of the first timeline (20-49).
        #expect(t.ghosts.count == 3)
        #expect(t.ghosts.map(\.from) == [50, 20, 50])
    }

    @Test func pointSeriesTruncatesOnRollback() {
        var p = PointSeries()
        for s in [100, 200, 300] { p.append(step: s, value: Double(s)) }
        p.append(step: 200, value: 1)
        #expect(p.steps == [100, 200])
        #expect(p.summary(in: 150...250)?.max == 1)
    }

    @Test func debiasedEMA() {
        var e = DebiasedEMA(weight: 0.9)
        // The first value comes back unchanged (debiasing).
        let v1 = e.add(2)
        #expect(abs(v1 - 2) < 1e-12)
        let v2 = e.add(4)
        // ema = 0.9·0.2 + 0.1·4 = 0.58; debiased /(1-0.81) = 3.0526...
        #expect(abs(v2 - 0.58 / 0.19) < 1e-9)
        var z = DebiasedEMA(weight: 0)
        let z1 = z.add(5), z2 = z.add(7)
        #expect(z1 == 5 && z2 == 7)
        for _ in 0..<1000 { e.add(1) }
        #expect(abs(e.value - 1) < 1e-9)
    }
}

@Suite struct EnvelopeBulkBuildTests {
    /// The one-pass bulk build: exactly what appending one value at a time gives while nothing is trimmed; on long
    /// runs exact over the retained last steps and never narrower than the truth anywhere (no extreme lost); for
    /// starts that are and are not block-aligned, with gaps of NaN.
    @Test(arguments: [(0, 1), (5, 900), (4096, 7_000), (7, 300_001)])
    func bulkBuildIsAppendingOneByOne(start: Int, count: Int) {
        var rng = EnvelopeTests.LCG(state: UInt64(count))
        let values = (0..<count).map { i in i % 97 == 13 ? Double.nan : rng.next() * 10 - 5 }
        let retained = 512
        var bulk = EnvelopeSeries(retainedBlocks: retained)
        bulk.append(count: count, startingAt: start) { values[$0] }
        var inc = EnvelopeSeries(retainedBlocks: retained)
        for (i, v) in values.enumerated() { inc.append(step: start + i, value: v) }
        #expect(bulk.firstStep == inc.firstStep && bulk.lastStep == inc.lastStep && bulk.appendedCount == inc.appendedCount)
        let last = start + count - 1
        var ranges = [start...last, start...start, last...last, max(start, last - 300)...last]
        for _ in 0..<60 {
            let a = start + Int(rng.next() * Double(count)), b = start + Int(rng.next() * Double(count))
            ranges.append(min(a, b)...max(a, b))
        }
        let trimmed = count > 2 * retained
        for r in ranges {
            let truth = values[(r.lowerBound - start)...(r.upperBound - start)].filter { $0.isFinite }
            guard let got = bulk.summary(in: r) else { #expect(truth.isEmpty, "\(r)"); continue }
            #expect(got.min <= truth.min()! && got.max >= truth.max()!, "\(r)")
            if !trimmed, let expected = inc.summary(in: r) {
                // Sums in another order: equal to rounding.
                #expect(got.min == expected.min && got.max == expected.max && got.first == expected.first
                        && got.last == expected.last && got.count == expected.count
                        && abs(got.sum - expected.sum) <= 1e-9 * max(1, abs(expected.sum)), "\(r)")
            }
            if r.lowerBound > last - retained {
                #expect(got.count == truth.count && got.min == truth.min() && got.max == truth.max() && got.last == truth.last, "\(r)")
            }
        }
        #expect(bulk.storedBlockCount <= EnvelopeSeries.levelCount * 2 * retained)
    }
}
