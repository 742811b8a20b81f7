import LRLog

// Filling a RunModel from a whole run read from a file (replay): column by column, never record by record,
// so a million steps take a few passes over arrays instead of a million records.

extension RunModel {
    /// Builds the tracks, evaluations, events and end of `run` at once.
    ///
    /// `axis` says where each step row goes on the x axis (default: its step). Rows whose x does not increase
    /// start a new segment as a rollback does live (the replaced steps become a ghost branch). Consecutive x
    /// values are built in one pass per track; gaps (a log written every 10 steps) are filled with NaN, which the
    /// tracks skip, unless the gaps are so large that one record at a time is cheaper.
    public func ingest(run: RunData, axis: ReplayAxis? = nil) {
        let axis = axis ?? ReplayAxis(run: run)
        if let h = run.header { ingest(.header(h)) }
        if run.format != .runLog { importedNames = (run.mapping, run.tags) }
        let s = run.steps
        // Metrics that only step records give are built column by column with the steps; the others (logged by
        // evaluations or `metrics` records, or by those and step records alike) point by point afterwards.
        let elsewhere = Set(run.evals.flatMap { $0.metrics.map(\.name) } + run.metricSeries.map(\.name))
        let columnOnly = s.metricNames.map { !elsewhere.contains($0) }
        let order = axis.ingestOrder
        let count = order?.count ?? s.count
        @inline(__always) func row(_ k: Int) -> Int { order?[k] ?? k }

        var k = 0
        while k < count {
            // A segment: rows whose x increases.
            var end = k + 1
            while end < count, axis.x(ofRow: row(end)) > axis.x(ofRow: row(end - 1)) { end += 1 }
            var first = k
            if let last = lastStep, axis.x(ofRow: row(first)) <= last {
                // A rollback: the record path resets smoothing and branches the tracks.
                var r = record(s, row: row(first), x: axis.x(ofRow: row(first)))
                r.metrics.removeAll { elsewhere.contains($0.name) }
                ingest(.step(r))
                first += 1
            }
            if first < end { ingestSegment(s, rows: first..<end, row: row, axis: axis, metrics: columnOnly) }
            k = end
        }
        if count > 0 {
            let lastRow = row(count - 1)
            lastStepRecord = record(s, row: lastRow, x: axis.x(ofRow: lastRow))
        }
        if axis.isSteps { ingestRates(s, order: order, events: run.events) }
        // The steps drew each rollback's ghost branch already; an evaluation of an abandoned branch (made before a
        // rollback to an earlier step) goes, as it does live.
        let rollbacks = run.events.compactMap { e in Self.rollbackTarget(e).map { (wall: e.wallTime, to: $0) } }
        for e in run.evals {
            guard let x = axis.x(step: e.step, wallTime: e.wallTime) else { continue }
            if rollbacks.contains(where: { $0.wall >= e.wallTime && $0.to < e.step }) { continue }
            var m = e
            m.step = x
            m.metrics = []
            ingest(.eval(m))
        }
        ingestPointMetrics(run, names: elsewhere, axis: axis)
        // The running clock has seen these events already (`ingestRates`).
        let clock = (pausedSince, pausedTotal)
        for e in run.events {
            guard let x = axis.x(step: e.step, wallTime: e.wallTime) else { continue }
            var m = e
            m.step = x
            recordCount += 1
            keep(event: m)
        }
        (pausedSince, pausedTotal) = clock
        if let end = run.end { ingest(.end(end)) }
    }

    /// The running clock and step rates of a whole run: its rows in order, with the paused intervals its events mark.
    private func ingestRates(_ s: LRLog.StepColumns, order: [Int]?, events: [EventRecord]) {
        let byTime = events.filter { $0.wallTime.isFinite }.sorted { $0.wallTime < $1.wallTime }
        var next = 0
        let count = order?.count ?? s.count
        for k in 0..<count {
            let i = order?[k] ?? k
            let wall = s.wallTime[i]
            while next < byTime.count, byTime[next].wallTime <= wall { noteForRate(event: byTime[next]); next += 1 }
            noteForRate(step: s.step[i], wallTime: wall)
        }
        while next < byTime.count { noteForRate(event: byTime[next]); next += 1 }
    }

    private func record(_ s: LRLog.StepColumns, row i: Int, x: Int) -> StepRecord {
        var r = s.record(at: i)
        r.step = x
        return r
    }

    /// The metrics in `names`, from every record that gives them, one track each: their values ordered by x (file
    /// order within an x), the first at each x kept.
    private func ingestPointMetrics(_ run: RunData, names: Set<String>, axis: ReplayAxis) {
        guard !names.isEmpty else { return }
        var points: [String: [(x: Int, value: Double)]] = [:]
        let s = run.steps
        for (m, name) in s.metricNames.enumerated() where names.contains(name) {
            let column = s.metrics[m]
            let count = axis.ingestOrder?.count ?? s.count
            for k in 0..<count {
                let i = axis.ingestOrder?[k] ?? k
                let x = axis.x(ofRow: i)
                if !column[i].isNaN, x != Int.min { points[name, default: []].append((x, Double(column[i]))) }
            }
        }
        for e in run.evals {
            guard !e.metrics.isEmpty, let x = axis.x(step: e.step, wallTime: e.wallTime) else { continue }
            for m in e.metrics { points[m.name, default: []].append((x, m.value)) }
        }
        for series in run.metricSeries {
            for k in series.steps.indices {
                let wall = series.wallTimes.indices.contains(k) ? series.wallTimes[k] : .nan
                if let x = axis.x(step: series.steps[k], wallTime: wall) { points[series.name, default: []].append((x, series.values[k])) }
            }
        }
        for name in run.metricNames where names.contains(name) {
            guard let p = points[name] else { continue }
            let sorted = p.enumerated().sorted { ($0.element.x, $0.offset) < ($1.element.x, $1.offset) }.map(\.element)
            var xs: [Int] = [], values: [Double] = []
            for q in sorted where xs.last != q.x { xs.append(q.x); values.append(q.value) }
            metrics.append(name, steps: xs, values: values)
        }
    }

    /// Rows `rows` (positions in the ingest order) with increasing x, after the tracks' last step. `metrics` says
    /// which metric columns go with them.
    private func ingestSegment(_ s: LRLog.StepColumns, rows: Range<Int>, row: (Int) -> Int, axis: ReplayAxis,
                               metrics take: [Bool]) {
        let firstX = axis.x(ofRow: row(rows.lowerBound))
        let lastX = axis.x(ofRow: row(rows.upperBound - 1))
        let span = lastX - firstX + 1
        guard span <= max(4 * rows.count, rows.count + 1_000_000) else {
            for k in rows {
                var r = record(s, row: row(k), x: axis.x(ofRow: row(k)))
                r.metrics.removeAll { m in !take[s.metricNames.firstIndex(of: m.name)!] }
                ingest(.step(r))
            }
            return
        }
        let groups = s.lrs.count
        var loss = [Double](repeating: .nan, count: span)
        var sps = loss, gn = loss
        var lrs = [[Double]](repeating: loss, count: groups)
        loss.withUnsafeMutableBufferPointer { lossOut in
            sps.withUnsafeMutableBufferPointer { spsOut in
                gn.withUnsafeMutableBufferPointer { gnOut in
                    s.loss.withUnsafeBufferPointer { l in
                        s.samplesPerSec.withUnsafeBufferPointer { p in
                            s.gradNorm.withUnsafeBufferPointer { g in
                                for k in rows {
                                    let i = row(k)
                                    let j = axis.x(ofRow: i) - firstX
                                    lossOut[j] = Double(l[i]); spsOut[j] = Double(p[i]); gnOut[j] = Double(g[i])
                                }
                            }
                        }
                    }
                }
            }
        }
        for g in 0..<groups {
            lrs[g].withUnsafeMutableBufferPointer { out in
                s.lrs[g].withUnsafeBufferPointer { col in
                    for k in rows {
                        let i = row(k)
                        out[axis.x(ofRow: i) - firstX] = col[i]
                    }
                }
            }
        }
        ingestColumns(firstStep: firstX, lrs: lrs, loss: loss, samplesPerSec: sps, gradNorm: gn)
        // Consecutive x in file order (the usual case): new tracks straight from the Float32 columns, side by side.
        var built = Set<Int>()
        if span == rows.count, axis.ingestOrder == nil {
            let fresh = s.metricNames.indices.filter { take[$0] && metrics.track(named: s.metricNames[$0])?.isEmpty ?? true }
            let tracks = MetricTracks.build(columns: fresh.map { s.metrics[$0] }, rows: rows, startingAt: firstX,
                                            retainedBlocks: trackBlocks)
            for (m, track) in zip(fresh, tracks) where metrics.install(s.metricNames[m], track) { built.insert(m) }
        }
        // Else straight from the columns one by one, or through a dense column with gaps, one metric at a time so only
        // one exists at once.
        for (m, name) in s.metricNames.enumerated() where take[m] && !built.contains(m) {
            if span == rows.count {
                s.metrics[m].withUnsafeBufferPointer { col in
                    metrics.append(name, count: span, startingAt: firstX) { Double(col[row(rows.lowerBound + $0)]) }
                }
                continue
            }
            var dense = [Double](repeating: .nan, count: span)
            dense.withUnsafeMutableBufferPointer { out in
                s.metrics[m].withUnsafeBufferPointer { col in
                    for k in rows {
                        let i = row(k)
                        out[axis.x(ofRow: i) - firstX] = Double(col[i])
                    }
                }
            }
            metrics.append(name, contentsOf: dense, startingAt: firstX)
        }
    }
}

/// Where a run's rows go on the x axis of a replay: at their step (the default), or at their wall time in
/// multiples of `unit` seconds (runs aligned by time). Also finds the row drawn at a cursor.
public struct ReplayAxis: Sendable {
    /// nil: x is the step.
    public let unit: Double?
    /// x per row when it is not the step column; `Int.min` for rows left out (no wall time, or the same x as
    /// the row before).
    let xs: [Int]?
    let steps: [Int]
    /// The rows of the final timeline in increasing x (nil: every row, in order).
    let timeline: [Int]?
    /// The rows to ingest, in file order (nil: all).
    let ingestOrder: [Int]?

    public var isSteps: Bool { unit == nil }

    /// The axis by step.
    public init(run: RunData) {
        unit = nil
        xs = nil
        steps = run.steps.step
        ingestOrder = nil
        if run.steps.isAscending {
            var strictly = true
            steps.withUnsafeBufferPointer { b in
                for i in b.indices.dropFirst() where b[i] == b[i - 1] { strictly = false; break }
            }
            timeline = strictly ? nil : Self.finalTimeline(steps)
        } else {
            timeline = Self.finalTimeline(steps)
        }
    }

    /// The axis by wall time in units of `unit` seconds.
    public init(run: RunData, unit: Double) {
        self.unit = unit
        steps = run.steps.step
        var xs = [Int](repeating: Int.min, count: steps.count)
        var kept: [Int] = []
        kept.reserveCapacity(steps.count)
        var last = Int.min
        for (i, w) in run.steps.wallTime.enumerated() where w.isFinite && w >= 0 {
            let x = Int((w / unit).rounded(.down))
            if x > last {
                xs[i] = x
                kept.append(i)
                last = x
            } else if x == last {
                // Rows within one unit of time: the latest stands for them (so the last step is always kept).
                xs[kept[kept.count - 1]] = Int.min
                xs[i] = x
                kept[kept.count - 1] = i
            }
        }
        self.xs = xs
        timeline = kept
        ingestOrder = kept
    }

    /// For each x, the last row in file order with that x: what the run's timeline shows after its rollbacks.
    static func finalTimeline(_ xs: [Int]) -> [Int] {
        var rows: [Int] = []
        var lowest = Int.max
        for i in xs.indices.reversed() where xs[i] < lowest {
            rows.append(i)
            lowest = xs[i]
        }
        return rows.reversed()
    }

    @inline(__always) func x(ofRow i: Int) -> Int { xs?[i] ?? steps[i] }

    /// The x of an evaluation or event, or nil when it cannot be placed (no wall time on a time axis).
    public func x(step: Int, wallTime: Double) -> Int? {
        guard let unit else { return step }
        guard wallTime.isFinite, wallTime >= 0 else { return nil }
        return Int((wallTime / unit).rounded(.down))
    }

    /// Rows on the timeline.
    public var count: Int { timeline?.count ?? steps.count }

    @inline(__always) func rowAt(_ k: Int) -> Int { timeline?[k] ?? k }

    /// The x of the first and last rows of the timeline.
    public var firstX: Int? { count > 0 ? x(ofRow: rowAt(0)) : nil }
    public var lastX: Int? { count > 0 ? x(ofRow: rowAt(count - 1)) : nil }

    /// The last timeline row at or before x.
    public func row(atOrBefore x: Int) -> Int? {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self.x(ofRow: rowAt(mid)) <= x { lo = mid + 1 } else { hi = mid }
        }
        return lo > 0 ? rowAt(lo - 1) : nil
    }

    /// The x of the first timeline row after x.
    public func x(after x: Int) -> Int? {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self.x(ofRow: rowAt(mid)) <= x { lo = mid + 1 } else { hi = mid }
        }
        return lo < count ? self.x(ofRow: rowAt(lo)) : nil
    }

    /// A wall-time unit for runs: a 1, 2 or 5 × 10^k seconds near (not above) the mean time per row of the
    /// longest run, so the time axis has about as many positions as the runs have steps. nil when no run has
    /// wall times.
    public static func wallTimeUnit(for runs: [RunData]) -> Double? {
        var duration = 0.0, rows = 1
        for r in runs {
            if let w = r.steps.wallTime.last(where: { $0.isFinite }), w > duration { duration = w }
            rows = max(rows, r.steps.count)
        }
        guard duration > 0 else { return nil }
        let raw = max(1e-6, duration / Double(rows))
        var mag = 1e-6
        while mag * 10 <= raw { mag *= 10 }
        for m in [5.0, 2, 1] where m * mag <= raw { return m * mag }
        return mag
    }
}
