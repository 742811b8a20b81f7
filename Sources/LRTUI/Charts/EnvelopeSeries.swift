// Bounded-memory min/max summaries of one metric over steps, so a chart column can show the exact envelope of the
// steps it covers even for runs of millions of steps.

/// Min, max, first, last, sum and count of the values in a range of steps.
public struct EnvelopeSummary: Equatable, Sendable {
    public var min: Double
    public var max: Double
    /// The value at the earliest step in the range.
    public var first: Double
    /// The value at the latest step in the range.
    public var last: Double
    public var sum: Double
    public var count: Int

    public init(value: Double) {
        min = value; max = value; first = value; last = value; sum = value; count = 1
    }

    public init(min: Double, max: Double, first: Double, last: Double, sum: Double, count: Int) {
        self.min = min; self.max = max; self.first = first; self.last = last; self.sum = sum; self.count = count
    }

    static let empty = EnvelopeSummary(min: .infinity, max: -.infinity, first: .nan, last: .nan, sum: 0, count: 0)

    public var mean: Double { count > 0 ? sum / Double(count) : .nan }
    public var isEmpty: Bool { count == 0 }

    /// Adds a later value.
    @inline(__always) mutating func add(_ v: Double) {
        if count == 0 { first = v }
        if v < min { min = v }
        if v > max { max = v }
        last = v; sum += v; count += 1
    }

    /// Merges a summary of later steps.
    @inline(__always) public mutating func merge(_ o: EnvelopeSummary) {
        guard o.count > 0 else { return }
        if count == 0 { self = o; return }
        if o.min < min { min = o.min }
        if o.max > max { max = o.max }
        last = o.last; sum += o.sum; count += o.count
    }

    /// The merge of two optional summaries in time order.
    public static func merged(_ a: EnvelopeSummary?, _ b: EnvelopeSummary?) -> EnvelopeSummary? {
        guard var a else { return b }
        guard let b else { return a }
        a.merge(b)
        return a
    }
}

/// Anything a line chart can draw: it summarises the values at steps in a range.
public protocol ColumnSource {
    /// The summary of the values at steps in `range`, or nil when there are none.
    func summary(in range: ClosedRange<Int>) -> EnvelopeSummary?
}

/// An append-only multi-resolution summary of one metric over increasing integer steps.
///
/// Level k holds blocks of 8^k consecutive steps (aligned: block i covers steps i·8^k ..< (i+1)·8^k) with min, max,
/// first, last, sum and count. Every level but the coarsest keeps only its most recent `retainedBlocks`
/// (up to twice that before it trims), so memory is bounded by about `levelCount · 2 · retainedBlocks` summaries
/// however long the run. A range query decomposes the range into the largest aligned blocks that are still kept,
/// so it is exact where fine data is kept, and conservative (the envelope can only grow, never lose an extreme)
/// where it has to use a coarser block that sticks out of the range.
public struct EnvelopeSeries: ColumnSource, Sendable {
    public static let levelCount = 8
    static let shift = 3  // fan-out 8

    struct Level: Sendable {
        var firstBlock = 0
        var blocks: [EnvelopeSummary] = []
        var endBlock: Int { firstBlock + blocks.count }
        @inline(__always) func block(_ i: Int) -> EnvelopeSummary? {
            i >= firstBlock && i < endBlock ? blocks[i - firstBlock] : nil
        }
    }

    var levels: [Level]
    /// Blocks each level keeps (between this and twice this) except the coarsest.
    public let retainedBlocks: Int
    public private(set) var firstStep: Int?
    public private(set) var lastStep: Int?
    /// Values appended (non-finite ones included in the count of steps seen but not summarised).
    public private(set) var appendedCount = 0

    public init(retainedBlocks: Int = 4096) {
        self.retainedBlocks = max(16, retainedBlocks)
        levels = Array(repeating: Level(), count: Self.levelCount)
    }

    /// Builds from values at consecutive steps `startStep, startStep+1, ...` in one pass (replay of a whole log).
    public init(startStep: Int, values: [Double], retainedBlocks: Int = 4096) {
        self.init(retainedBlocks: retainedBlocks)
        append(contentsOf: values, startingAt: startStep)
    }

    public var isEmpty: Bool { lastStep == nil }

    /// Summaries stored across all levels (what memory is proportional to).
    public var storedBlockCount: Int { levels.reduce(0) { $0 + $1.blocks.count } }

    /// Approximate bytes used by the summaries.
    public var approximateBytes: Int { storedBlockCount * MemoryLayout<EnvelopeSummary>.stride }

    /// Adds the value at `step`. Steps must increase; a step not after the last one is ignored (returns false).
    /// Non-finite values advance the step but are not summarised.
    @discardableResult
    public mutating func append(step: Int, value: Double) -> Bool {
        guard step >= 0, lastStep.map({ step > $0 }) ?? true else { return false }
        if firstStep == nil { firstStep = step }
        lastStep = step
        appendedCount += 1
        guard value.isFinite else { return true }
        for k in 0..<Self.levelCount {
            let idx = step >> (Self.shift * k)
            if levels[k].blocks.isEmpty {
                levels[k].firstBlock = idx
                levels[k].blocks.append(EnvelopeSummary(value: value))
            } else {
                let last = levels[k].endBlock - 1
                if idx == last {
                    levels[k].blocks[levels[k].blocks.count - 1].add(value)
                } else {
                    let gap = idx - last - 1
                    if gap > 0 {
                        if k < Self.levelCount - 1 && gap >= 2 * retainedBlocks {
                            levels[k].blocks.removeAll(keepingCapacity: true)
                            levels[k].firstBlock = idx
                        } else {
                            levels[k].blocks.append(contentsOf: repeatElement(.empty, count: gap))
                        }
                    }
                    levels[k].blocks.append(EnvelopeSummary(value: value))
                    trim(level: k)
                }
            }
        }
        return true
    }

    /// Appends values at consecutive steps starting at `start` (faster than one at a time on an empty series).
    public mutating func append(contentsOf values: [Double], startingAt start: Int) {
        values.withUnsafeBufferPointer { b in append(count: b.count, startingAt: start) { b[$0] } }
    }

    /// Appends `count` values at consecutive steps from `start`, value i being `value(i)`. On an empty series it is
    /// built in one pass that keeps only what the levels retain: each value is summed into the current block of every
    /// level, and a block is stored when it closes, if it is in its level's retained suffix (known in advance from
    /// the count). So a million values cost a few operations each and no array of a million summaries.
    @inline(__always)
    public mutating func append(count n: Int, startingAt start: Int, value: (Int) -> Double) {
        guard n > 0 else { return }
        guard isEmpty, start >= 0 else {
            for i in 0..<n { append(step: start + i, value: value(i)) }
            return
        }
        firstStep = start
        lastStep = start + n - 1
        appendedCount = n
        let top = Self.levelCount - 1
        // The first block each level keeps: all of them, or the retained suffix when there are more than twice as many.
        var keepFrom = [Int](repeating: 0, count: Self.levelCount)
        for k in 0...top {
            let first = start >> (Self.shift * k), last = (start + n - 1) >> (Self.shift * k)
            keepFrom[k] = k < top && last - first + 1 > 2 * retainedBlocks ? last - retainedBlocks + 1 : first
            levels[k].firstBlock = keepFrom[k]
            levels[k].blocks = []
            levels[k].blocks.reserveCapacity(last - keepFrom[k] + 1)
        }
        // The open block of each level above 0 (level 0's blocks are single steps).
        var open = [EnvelopeSummary](repeating: .empty, count: Self.levelCount)
        open.withUnsafeMutableBufferPointer { open in
            keepFrom.withUnsafeBufferPointer { keepFrom in
                for i in 0..<n {
                    let step = start + i
                    let v = value(i)
                    let single = v.isFinite ? EnvelopeSummary(value: v) : .empty
                    if step >= keepFrom[0] { levels[0].blocks.append(single) }
                    open[1].merge(single)
                    // Close every level whose block ends at this step (a level closes only if the one below did).
                    let isLast = i == n - 1
                    var k = 1
                    while k <= top {
                        let mask = (1 << (Self.shift * k)) - 1
                        guard isLast || step & mask == mask else { break }
                        if step >> (Self.shift * k) >= keepFrom[k] { levels[k].blocks.append(open[k]) }
                        if k < top { open[k + 1].merge(open[k]) }
                        open[k] = .empty
                        k += 1
                    }
                }
            }
        }
    }

    private mutating func trim(level k: Int) {
        guard k < Self.levelCount - 1, levels[k].blocks.count > 2 * retainedBlocks else { return }
        let drop = levels[k].blocks.count - retainedBlocks
        levels[k].blocks.removeFirst(drop)
        levels[k].firstBlock += drop
    }

    /// The summary of the values at steps in `range`: exact where the finest levels still cover it, else
    /// conservative (it may include a few neighbouring steps, so it never misses an extreme).
    public func summary(in range: ClosedRange<Int>) -> EnvelopeSummary? {
        guard let first = firstStep, let last = lastStep else { return nil }
        let hi = min(range.upperBound, last)
        var pos = max(range.lowerBound, first, 0)
        guard pos <= hi else { return nil }
        var acc = EnvelopeSummary.empty
        let top = Self.levelCount - 1
        while pos <= hi {
            // The largest aligned block starting at pos that fits in [pos, hi].
            var k = pos == 0 ? top : min(top, pos.trailingZeroBitCount / Self.shift)
            while k > 0 && pos + (1 << (Self.shift * k)) - 1 > hi { k -= 1 }
            // Finer levels keep a suffix of the run: if level k lacks the block, use the finest coarser level that
            // has the block containing pos.
            var level = k
            var idx = pos >> (Self.shift * level)
            while levels[level].block(idx) == nil && level < top {
                level += 1
                idx = pos >> (Self.shift * level)
            }
            guard let block = levels[level].block(idx) else {
                // Before the coarsest level's first block (cannot happen once data exists) or a hole: skip ahead.
                let next = (idx + 1) << (Self.shift * level)
                if next <= pos { break }
                pos = next
                continue
            }
            acc.merge(block)
            pos = (idx + 1) << (Self.shift * level)
        }
        return acc.count > 0 ? acc : nil
    }

    /// The value at `step` (exact while the finest level keeps it, else the last value of the finest block that
    /// contains it), or nil when the series has no value there.
    public func value(at step: Int) -> Double? {
        guard let first = firstStep, let last = lastStep, step >= first else { return nil }
        let s = min(step, last)
        for k in 0..<Self.levelCount {
            if let b = levels[k].block(s >> (Self.shift * k)), b.count > 0 {
                return b.last
            }
        }
        return nil
    }

    /// The last finite value appended.
    public var lastValue: Double? {
        guard let b = levels[0].blocks.last(where: { $0.count > 0 }) else { return nil }
        return b.last
    }
}

/// Sparse points (evaluations, a planned schedule): a sorted array searched by binary search.
public struct PointSeries: ColumnSource, Sendable, Equatable {
    public private(set) var steps: [Int] = []
    public private(set) var values: [Double] = []

    public init() {}

    public init(points: [(step: Int, value: Double)]) {
        for p in points.sorted(by: { $0.step < $1.step }) { append(step: p.step, value: p.value) }
    }

    /// Values at consecutive steps from `start`.
    public init(start: Int, values: [Double]) {
        self.steps = Array(start..<(start + values.count))
        self.values = values
    }

    public var count: Int { steps.count }
    public var isEmpty: Bool { steps.isEmpty }
    public var last: (step: Int, value: Double)? { steps.last.map { ($0, values[values.count - 1]) } }

    /// Appends a point; a step at or before the last one first drops the points from that step on (a rollback).
    public mutating func append(step: Int, value: Double) {
        if let last = steps.last, step <= last {
            let cut = lowerBound(step)
            steps.removeSubrange(cut...); values.removeSubrange(cut...)
        }
        steps.append(step); values.append(value)
    }

    /// Drops the points after `step` (a rollback to it).
    public mutating func removeAfter(_ step: Int) {
        let cut = lowerBound(step + 1)
        steps.removeSubrange(cut...); values.removeSubrange(cut...)
    }

    func lowerBound(_ step: Int) -> Int {
        var lo = 0, hi = steps.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if steps[mid] < step { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    public func summary(in range: ClosedRange<Int>) -> EnvelopeSummary? {
        var i = lowerBound(range.lowerBound)
        var acc = EnvelopeSummary.empty
        while i < steps.count && steps[i] <= range.upperBound {
            if values[i].isFinite { acc.add(values[i]) }
            i += 1
        }
        return acc.count > 0 ? acc : nil
    }

    /// Points with steps in `range`.
    public func points(in range: ClosedRange<Int>) -> [(step: Int, value: Double)] {
        var out: [(Int, Double)] = []
        var i = lowerBound(range.lowerBound)
        while i < steps.count && steps[i] <= range.upperBound { out.append((steps[i], values[i])); i += 1 }
        return out
    }
}
