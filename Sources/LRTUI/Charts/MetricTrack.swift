/// One metric over a run that can be rolled back: when a step arrives at or before the last one, the timeline
/// continues from there in a new segment, and the steps it replaces are kept as a ghost branch (drawn dimmed).
public struct MetricTrack: ColumnSource, Sendable {
    public struct Segment: Sendable {
        public var series: EnvelopeSeries
        /// Steps of `series` that belong to the timeline (or to the ghost branch).
        public var from: Int
        public var through: Int
    }

    public private(set) var segments: [Segment] = []
    /// Branches replaced by rollbacks, oldest first (at most `maxGhosts`).
    public private(set) var ghosts: [Segment] = []
    public static let maxGhosts = 4
    let retainedBlocks: Int

    public init(retainedBlocks: Int = 4096) {
        self.retainedBlocks = retainedBlocks
    }

    public var isEmpty: Bool { segments.isEmpty }
    /// The timeline's last step (a rollback cuts it before the abandoned branch is replaced).
    public var lastStep: Int? {
        guard let seg = segments.last, let last = seg.series.lastStep else { return nil }
        return min(last, seg.through)
    }
    public var firstStep: Int? { segments.first?.from }
    public var lastValue: Double? {
        guard let seg = segments.last else { return nil }
        if let last = seg.series.lastStep, last > seg.through { return seg.series.value(at: seg.through) }
        return seg.series.lastValue
    }

    public mutating func append(step: Int, value: Double) {
        if let last = lastStep, step <= last {
            rollback(to: step)
        }
        if segments.isEmpty || segments[segments.count - 1].series.lastStep.map({ step <= $0 }) == true {
            var s = EnvelopeSeries(retainedBlocks: retainedBlocks)
            s.append(step: step, value: value)
            segments.append(Segment(series: s, from: step, through: Int.max))
        } else {
            segments[segments.count - 1].series.append(step: step, value: value)
        }
    }

    /// Values at consecutive steps from `start` (replay of a whole column); on an empty track it builds in one pass.
    public mutating func append(contentsOf values: [Double], startingAt start: Int) {
        values.withUnsafeBufferPointer { b in append(count: b.count, startingAt: start) { b[$0] } }
    }

    /// `count` values at consecutive steps from `start`, value i being `value(i)`; on an empty track in one pass.
    @inline(__always)
    public mutating func append(count: Int, startingAt start: Int, value: (Int) -> Double) {
        if segments.isEmpty {
            var series = EnvelopeSeries(retainedBlocks: retainedBlocks)
            series.append(count: count, startingAt: start, value: value)
            segments.append(Segment(series: series, from: start, through: Int.max))
        } else {
            for i in 0..<count { append(step: start + i, value: value(i)) }
        }
    }

    /// Cuts the timeline before `step`: what was at `step` and later becomes a ghost branch.
    public mutating func rollback(to step: Int) {
        guard let last = lastStep, step <= last else { return }
        var ghostParts: [Segment] = []
        while let seg = segments.last, seg.from >= step {
            ghostParts.append(seg)
            segments.removeLast()
        }
        if !segments.isEmpty {
            let i = segments.count - 1
            if let segLast = segments[i].series.lastStep, min(segLast, segments[i].through) >= step {
                var g = segments[i]
                g.from = step
                ghostParts.append(g)
            }
            segments[i].through = step - 1
        }
        for var g in ghostParts.reversed() {
            g.through = min(g.through, g.series.lastStep ?? g.through)
            ghosts.append(g)
        }
        if ghosts.count > Self.maxGhosts { ghosts.removeFirst(ghosts.count - Self.maxGhosts) }
    }

    public func summary(in range: ClosedRange<Int>) -> EnvelopeSummary? {
        var acc: EnvelopeSummary? = nil
        for seg in segments {
            let lo = max(range.lowerBound, seg.from), hi = min(range.upperBound, seg.through)
            if lo > hi { continue }
            acc = EnvelopeSummary.merged(acc, seg.series.summary(in: lo...hi))
        }
        return acc
    }

    /// The value the timeline had at `step`.
    public func value(at step: Int) -> Double? {
        for seg in segments.reversed() where step >= seg.from {
            return seg.series.value(at: min(step, seg.through))
        }
        return nil
    }

    /// The ghost branches as sources to draw.
    public var ghostSources: [GhostBranch] { ghosts.map { GhostBranch(segment: $0) } }

    public var storedBlockCount: Int {
        segments.reduce(0) { $0 + $1.series.storedBlockCount } + ghosts.reduce(0) { $0 + $1.series.storedBlockCount }
    }
}

/// A replaced branch of a `MetricTrack`.
public struct GhostBranch: ColumnSource, Sendable {
    let segment: MetricTrack.Segment
    public var from: Int { segment.from }
    public var through: Int { segment.through }
    public func summary(in range: ClosedRange<Int>) -> EnvelopeSummary? {
        let lo = max(range.lowerBound, segment.from), hi = min(range.upperBound, segment.through)
        return lo <= hi ? segment.series.summary(in: lo...hi) : nil
    }
}
