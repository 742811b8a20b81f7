/// One run, column by column, for replay and the UI: an lrtop run log, or a TensorBoard/CSV import.
///
/// lrtop logs fill `steps`, `evals`, `events` and `end` directly. Imports keep their raw series in
/// `scalars` and fill `steps` and `evals` through `mapping` (rebuilt by `applyMapping(_:)`), so the UI
/// draws both kinds the same way; missing values are NaN.
public struct RunData: Sendable {
    public enum Format: String, Sendable {
        case runLog = "lrtop run log"
        case tensorBoard = "TensorBoard"
        case csv = "CSV"
    }

    /// Display name: the file or folder name, relative to what the user opened.
    public var name: String
    /// Path of the file (or folder of event files) it came from.
    public var source: String
    public var format: Format
    /// The run log header; nil for imports.
    public var header: RunHeader?
    /// Param group names, in the order of `steps.lrs`.
    public var groups: [String]
    public var steps = StepColumns()
    public var evals: [EvalRecord] = []
    public var events: [EventRecord] = []
    public var end: EndRecord?
    /// Metrics that are not step-record columns: `metrics` records of a log, and an import's tags that `mapping`
    /// does not draw as a built-in (in file order). Step-record metrics are in `steps.metrics`, eval-record
    /// metrics in `evals`.
    public var metricSeries: [MetricSeries] = []
    /// Raw series of an import, by tag in file order; empty for lrtop logs.
    public var scalars: [ScalarSeries] = []
    /// How `scalars` map onto `steps` and `evals`.
    public var mapping = TagMapping()
    /// Unix time at which the run started (header start time, or the first TensorBoard event), if known.
    public var startUnixTime: Double?
    /// One line per problem met while reading ("file:line: what").
    public var warnings: [String] = []

    public init(name: String, source: String, format: Format, header: RunHeader? = nil, groups: [String] = []) {
        self.name = name; self.source = source; self.format = format; self.header = header; self.groups = groups
        if let header { adopt(header) }
    }

    /// Tags of `scalars`, in order.
    public var tags: [String] { scalars.map(\.tag) }

    public func series(_ tag: String) -> ScalarSeries? { scalars.first { $0.tag == tag } }

    /// Adds a record as it arrives (a followed log). A second header (an appended resume) is ignored.
    public mutating func append(_ record: RunRecord) {
        switch record {
        case let .header(h): if header == nil { adopt(h) }
        case let .step(s):
            steps.append(s)
            if steps.groupCount > groups.count { groups += (groups.count..<steps.groupCount).map { "group\($0)" } }
        case let .eval(e): evals.append(e)
        case let .metrics(m):
            for v in m.metrics { appendMetric(v.name, step: m.step, value: v.value, wallTime: m.wallTime) }
        case let .event(e): events.append(e)
        case let .end(e): end = e
        }
    }

    /// Adds one value of a metric that is not a step-record column (a `metrics` record's).
    mutating func appendMetric(_ name: String, step: Int, value: Double, wallTime: Double) {
        let i = metricSeries.firstIndex { $0.name == name } ?? {
            metricSeries.append(MetricSeries(name: name))
            return metricSeries.count - 1
        }()
        metricSeries[i].steps.append(step)
        metricSeries[i].values.append(value)
        metricSeries[i].wallTimes.append(wallTime)
    }

    mutating func adopt(_ h: RunHeader) {
        header = h
        groups = h.groups
        steps.ensureGroups(h.groups.count)
        startUnixTime = ISO8601.unixTime(h.startTime)
    }

    /// Approximate heap bytes held by the columns and series.
    public var byteCount: Int {
        steps.byteCount + evals.capacity * 48 + events.count * 160
            + scalars.reduce(0) { $0 + $1.steps.capacity * 8 + $1.values.capacity * 8 + $1.wallTimes.capacity * 8 }
            + metricSeries.reduce(0) { $0 + $1.steps.capacity * 8 + $1.values.capacity * 8 + $1.wallTimes.capacity * 8 }
    }

    // MARK: - Imports

    /// Rebuilds `steps`, `evals`, `groups` and `metricSeries` from `scalars` through `mapping`.
    ///
    /// Training series are merged by step: one row per distinct step (ascending), the last value a series
    /// logged at that step, NaN where it logged none. Epochs missing from a row carry the previous one.
    /// Wall time is relative to the earlier of `startUnixTime` (for TensorBoard, the first event's time)
    /// and the earliest wall time of any series; `startUnixTime` becomes that.
    public mutating func applyMapping(_ mapping: TagMapping) {
        self.mapping = mapping
        let byTag = Dictionary(scalars.enumerated().map { ($1.tag, $0) }, uniquingKeysWith: { a, _ in a })
        func seriesIndex(_ tag: String?) -> Int? { tag.flatMap { byTag[$0] } }

        let seriesStart = scalars.compactMap { $0.wallTimes.min() }.min()
        let base = [startUnixTime, seriesStart].compactMap { $0 }.min()
        startUnixTime = base
        groups = mapping.lrs.map(TagMapping.groupName(forLRTag:))

        let train: [Int?] = [seriesIndex(mapping.loss)] + mapping.lrs.map { seriesIndex($0) }
            + [seriesIndex(mapping.gradNorm), seriesIndex(mapping.samplesPerSec), seriesIndex(mapping.epoch),
               seriesIndex(mapping.wallTime)]
        let present = train.compactMap { $0 }
        var cols = StepColumns()
        if !present.isEmpty {
            let rowSteps: [Int]
            let identical = present.allSatisfy { scalars[$0].steps == scalars[present[0]].steps }
            let firstSteps = scalars[present[0]].steps
            if identical, zip(firstSteps, firstSteps.dropFirst()).allSatisfy({ $0 < $1 }) {
                rowSteps = firstSteps
            } else {
                var all: [Int] = []
                for i in present { all += scalars[i].steps }
                all.sort()
                var unique: [Int] = []
                unique.reserveCapacity(all.count)
                for s in all where unique.last != s { unique.append(s) }
                rowSteps = unique
            }
            let n = rowSteps.count
            func column(_ index: Int?) -> [Double] {
                var out = [Double](repeating: .nan, count: n)
                guard let index else { return out }
                let s = scalars[index]
                if s.steps == rowSteps { return s.values }
                for (k, step) in s.steps.enumerated() {
                    if let row = Self.search(rowSteps, step) { out[row] = s.values[k] }
                }
                return out
            }
            func wallColumn(_ index: Int?) -> [Double]? {
                guard let index, !scalars[index].wallTimes.isEmpty else { return nil }
                let s = scalars[index]
                var out = [Double](repeating: .nan, count: n)
                for (k, step) in s.steps.enumerated() {
                    if let row = Self.search(rowSteps, step) { out[row] = s.wallTimes[k] - (base ?? 0) }
                }
                return out
            }
            cols.step = rowSteps
            cols.loss = column(train[0]).map(Float.init)
            cols.lrs = mapping.lrs.indices.map { column(train[1 + $0]) }
            cols.gradNorm = column(train[1 + mapping.lrs.count]).map(Float.init)
            cols.samplesPerSec = column(train[2 + mapping.lrs.count]).map(Float.init)
            var epochs = column(train[3 + mapping.lrs.count])
            var last = 0.0
            for i in epochs.indices { if epochs[i].isNaN { epochs[i] = last } else { last = epochs[i] } }
            cols.epoch = epochs.map { Int32(clamping: Int($0.isFinite ? $0 : 0)) }
            var wall: [Double]? = train[4 + mapping.lrs.count].map { column($0) }
            for i in present where wall == nil { wall = wallColumn(i) }
            cols.wallTime = wall ?? [Double](repeating: .nan, count: n)
        }
        steps = cols

        var evalRecords: [EvalRecord] = []
        let lossIndex = seriesIndex(mapping.evalLoss), accIndex = seriesIndex(mapping.evalAccuracy)
        if lossIndex != nil || accIndex != nil {
            var evalSteps: [Int] = []
            for i in [lossIndex, accIndex].compactMap({ $0 }) { evalSteps += scalars[i].steps }
            evalSteps.sort()
            var unique: [Int] = []
            for s in evalSteps where unique.last != s { unique.append(s) }
            func lookup(_ index: Int?) -> [Int: (Double, Double)] {
                guard let index else { return [:] }
                let s = scalars[index]
                var d: [Int: (Double, Double)] = [:]
                for k in s.steps.indices {
                    d[s.steps[k]] = (s.values[k], s.wallTimes.isEmpty ? .nan : s.wallTimes[k] - (base ?? 0))
                }
                return d
            }
            let losses = lookup(lossIndex), accs = lookup(accIndex)
            for s in unique {
                let l = losses[s], a = accs[s]
                let epoch = cols.lastIndex(ofStep: s).map { Int(cols.epoch[$0]) } ?? 0
                evalRecords.append(EvalRecord(step: s, epoch: epoch, loss: l?.0 ?? .nan, accuracy: a?.0 ?? .nan,
                                              wallTime: l?.1 ?? a?.1 ?? .nan))
            }
        }
        evals = evalRecords
        // Every other tag is a metric of its own (the epoch and wall-time tags too: they are series the file holds).
        let drawn = Set([mapping.loss, mapping.gradNorm, mapping.samplesPerSec, mapping.evalLoss, mapping.evalAccuracy]
            .compactMap { $0 } + mapping.lrs)
        metricSeries = scalars.filter { !drawn.contains($0.tag) }.map { s in
            MetricSeries(name: s.tag, steps: s.steps, values: s.values,
                         wallTimes: s.wallTimes.isEmpty ? [] : s.wallTimes.map { $0 - (base ?? 0) })
        }
    }

    private static func search(_ sorted: [Int], _ value: Int) -> Int? {
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid] < value { lo = mid + 1 } else { hi = mid }
        }
        return lo < sorted.count && sorted[lo] == value ? lo : nil
    }
}

/// Columnar sink for the run log parser.
struct RunDataSink: RunRecordSink {
    var run: RunData

    mutating func header(_ header: RunHeader) { if run.header == nil { run.adopt(header) } }

    @inline(__always)
    mutating func step(step: Int, epoch: Int, lrs: UnsafeBufferPointer<Double>, loss: Double, gradNorm: Double,
                       samplesPerSec: Double, wallTime: Double, metrics: LineMetrics) {
        // A new metric's column first (NaN for the rows before), so the row appended next gets a cell in it.
        for i in 0..<metrics.count { _ = column(metrics, i) }
        run.steps.append(step: step, epoch: epoch, lrs: lrs, loss: loss, gradNorm: gradNorm,
                         samplesPerSec: samplesPerSec, wallTime: wallTime)
        for i in 0..<metrics.count { run.steps.setLastRow(metric: column(metrics, i), metrics.values[i]) }
    }

    mutating func eval(_ eval: EvalRecord) { run.evals.append(eval) }

    /// Step-record metric column and metric series of each parser metric id (-1: none yet).
    var columnOfID: [Int] = []
    var seriesOfID: [Int] = []

    @inline(__always)
    private mutating func column(_ metrics: LineMetrics, _ i: Int) -> Int {
        let id = Int(metrics.ids[i])
        if id < columnOfID.count, columnOfID[id] >= 0 { return columnOfID[id] }
        if id >= columnOfID.count { columnOfID += repeatElement(-1, count: id + 1 - columnOfID.count) }
        columnOfID[id] = run.steps.metricColumn(named: metrics.name(i))
        return columnOfID[id]
    }

    mutating func metrics(step: Int, wallTime: Double, metrics: LineMetrics) {
        for i in 0..<metrics.count {
            let id = Int(metrics.ids[i])
            if id >= seriesOfID.count { seriesOfID += repeatElement(-1, count: id + 1 - seriesOfID.count) }
            if seriesOfID[id] < 0 {
                seriesOfID[id] = run.metricSeries.count
                run.metricSeries.append(MetricSeries(name: metrics.name(i)))
            }
            let k = seriesOfID[id]
            run.metricSeries[k].steps.append(step)
            run.metricSeries[k].values.append(metrics.values[i])
            run.metricSeries[k].wallTimes.append(wallTime)
        }
    }

    mutating func event(_ event: EventRecord) { run.events.append(event) }
    mutating func end(_ end: EndRecord) { run.end = end }
    mutating func reserve(lines: Int) { run.steps.reserveCapacity(lines, groups: max(1, run.groups.count)) }

    /// Names groups that steps used but the header did not declare.
    mutating func finish() {
        if run.steps.groupCount > run.groups.count {
            run.groups += (run.groups.count..<run.steps.groupCount).map { "group\($0)" }
        }
    }
}

/// ISO 8601 timestamps ("2025-11-25T02:50:00Z", with optional fraction and offset), without Foundation.
enum ISO8601 {
    static func unixTime(_ text: String) -> Double? {
        let b = Array(text.utf8)
        func num(_ at: Int, _ n: Int) -> Int? {
            guard at + n <= b.count else { return nil }
            var v = 0
            for i in at..<at + n { guard isDigit(b[i]) else { return nil }; v = v * 10 + Int(b[i] - 48) }
            return v
        }
        guard let y = num(0, 4), b.count >= 19, b[4] == UInt8(ascii: "-"), let mo = num(5, 2), b[7] == UInt8(ascii: "-"),
              let d = num(8, 2), b[10] | 0x20 == UInt8(ascii: "t") || b[10] == 32, let h = num(11, 2),
              b[13] == UInt8(ascii: ":"), let mi = num(14, 2), b[16] == UInt8(ascii: ":"), let s = num(17, 2) else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",") {
            i += 1
            var scale = 0.1
            while i < b.count, isDigit(b[i]) { fraction += Double(b[i] - 48) * scale; scale /= 10; i += 1 }
        }
        var offset = 0
        if i < b.count {
            if b[i] | 0x20 == UInt8(ascii: "z") { i += 1 }
            else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
                guard let oh = num(i + 1, 2) else { return nil }
                var om = 0
                if let m = num(i + 4, 2), b[i + 3] == UInt8(ascii: ":") { om = m; i += 6 }
                else if let m = num(i + 3, 2) { om = m; i += 5 } else { i += 3 }
                offset = sign * (oh * 3600 + om * 60)
            }
        }
        guard i == b.count else { return nil }
        // Days from civil (Howard Hinnant's algorithm).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return Double(days * 86400 + h * 3600 + mi * 60 + s - offset) + fraction
    }
}
