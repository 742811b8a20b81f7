/// The step records of a run, one array per field, in file order (steps can repeat or go back after a
/// rollback). Memory per step: 32 bytes + 8 per LR group, so 1M steps with one group take 40 MB.
/// Loss, gradient norm and throughput are Float32: ample for plotting and for the 6-7 significant
/// digits the UI shows. LRs stay Double: a typed `lr 3e-4` must read back as 0.0003, not 0.00030000001.
/// Wall time stays Double: Float32 would round a 10-day run to 0.06 s. The records' own metrics are columns too
/// (Float32, 4 bytes a step each), NaN where a record did not give one.
public struct StepColumns: Sendable, Equatable {
    /// Optimizer step (`StepRecord.step`; for imported data, the series' step).
    public var step: [Int] = []
    public var epoch: [Int32] = []
    public var loss: [Float] = []
    /// `lrs[group][i]`, groups in `RunData.groups` order. NaN where a step did not give a group's LR.
    public var lrs: [[Double]] = []
    public var gradNorm: [Float] = []
    public var samplesPerSec: [Float] = []
    /// Seconds since the run started.
    public var wallTime: [Double] = []
    /// Names of the step records' metrics, in order of first appearance.
    public private(set) var metricNames: [String] = []
    /// `metrics[m][i]`: metric `metricNames[m]` at row i; NaN where the record did not give it.
    public private(set) var metrics: [[Float]] = []
    private var metricIndex: [String: Int] = [:]
    /// Rows reserved for, so a metric column that appears later is reserved alike.
    private var reservedRows = 0

    public init() {}

    public var count: Int { step.count }
    public var isEmpty: Bool { step.isEmpty }
    public var groupCount: Int { lrs.count }

    public mutating func reserveCapacity(_ n: Int, groups: Int) {
        step.reserveCapacity(n); epoch.reserveCapacity(n); loss.reserveCapacity(n)
        gradNorm.reserveCapacity(n); samplesPerSec.reserveCapacity(n); wallTime.reserveCapacity(n)
        while lrs.count < groups { lrs.append([]) }
        for g in lrs.indices { lrs[g].reserveCapacity(n) }
        for m in metrics.indices { metrics[m].reserveCapacity(n) }
        reservedRows = n
    }

    /// The column of metric `name`, added (NaN for the rows so far) when new.
    public mutating func metricColumn(named name: String) -> Int {
        if let i = metricIndex[name] { return i }
        var column = [Float]()
        column.reserveCapacity(max(reservedRows, step.count))
        column.append(contentsOf: repeatElement(.nan, count: step.count))
        metricIndex[name] = metrics.count
        metricNames.append(name)
        metrics.append(column)
        return metrics.count - 1
    }

    /// The column of metric `name`, or nil when no step record gave it.
    public func metric(named name: String) -> [Float]? { metricIndex[name].map { metrics[$0] } }

    /// Appends `other`'s metric columns (matched by name) for its rows, before its other columns are appended:
    /// a name new here gets NaN for the rows before, a column `other` lacks gets NaN for its rows.
    mutating func appendMetrics(of other: StepColumns) {
        var touched = Set<Int>()
        for (m, name) in other.metricNames.enumerated() {
            let c = metricColumn(named: name)
            metrics[c] += other.metrics[m]
            touched.insert(c)
        }
        for c in metrics.indices where !touched.contains(c) { metrics[c] += repeatElement(.nan, count: other.count) }
    }

    /// Sets metric column `m` of the last row (after `append`).
    @inline(__always)
    mutating func setLastRow(metric m: Int, _ value: Double) {
        metrics[m][metrics[m].count - 1] = Float(value)
    }

    /// Makes room for `groups` LR columns, filling earlier steps with NaN.
    mutating func ensureGroups(_ groups: Int) {
        while lrs.count < groups { lrs.append([Double](repeating: .nan, count: step.count)) }
    }

    public mutating func append(_ r: StepRecord) {
        r.lrs.withUnsafeBufferPointer { b in
            append(step: r.step, epoch: r.epoch, lrs: b, loss: r.loss, gradNorm: r.gradNorm,
                   samplesPerSec: r.samplesPerSec, wallTime: r.wallTime)
        }
        for m in r.metrics { setLastRow(metric: metricColumn(named: m.name), m.value) }
    }

    @inline(__always)
    mutating func append(step s: Int, epoch e: Int, lrs values: UnsafeBufferPointer<Double>, loss l: Double,
                         gradNorm g: Double, samplesPerSec sps: Double, wallTime w: Double) {
        if values.count > lrs.count { ensureGroups(values.count) }
        step.append(s)
        epoch.append(Int32(clamping: e))
        loss.append(Float(l))
        for i in 0..<lrs.count { lrs[i].append(i < values.count ? values[i] : .nan) }
        gradNorm.append(Float(g))
        samplesPerSec.append(Float(sps))
        wallTime.append(w)
        for m in metrics.indices { metrics[m].append(.nan) }
    }

    /// Row `i` as a record (loss, gradient norm, throughput and metrics at Float32 precision; NaN metrics left out).
    public func record(at i: Int) -> StepRecord {
        var values: [MetricValue] = []
        for m in metrics.indices where !metrics[m][i].isNaN { values.append(MetricValue(metricNames[m], Double(metrics[m][i]))) }
        return StepRecord(step: step[i], epoch: Int(epoch[i]), lrs: lrs.map { $0[i] }, loss: Double(loss[i]),
                          gradNorm: Double(gradNorm[i]), samplesPerSec: Double(samplesPerSec[i]), wallTime: wallTime[i],
                          metrics: values)
    }

    /// Index of the last row with `step`, or nil (binary search when steps ascend, else a scan).
    public func lastIndex(ofStep s: Int) -> Int? {
        guard !step.isEmpty else { return nil }
        if isAscending {
            var lo = 0, hi = step.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if step[mid] <= s { lo = mid + 1 } else { hi = mid }
            }
            return lo > 0 && step[lo - 1] == s ? lo - 1 : nil
        }
        return step.lastIndex(of: s)
    }

    /// Whether steps never go down (false after a rollback or a resume that restarted numbering).
    public var isAscending: Bool {
        step.withUnsafeBufferPointer { b in
            for i in b.indices.dropFirst() where b[i] < b[i - 1] { return false }
            return true
        }
    }

    /// Approximate heap bytes held by the columns.
    public var byteCount: Int {
        step.capacity * 8 + epoch.capacity * 4 + loss.capacity * 4 + gradNorm.capacity * 4
            + samplesPerSec.capacity * 4 + wallTime.capacity * 8 + lrs.reduce(0) { $0 + $1.capacity * 8 }
            + metrics.reduce(0) { $0 + $1.capacity * 4 }
    }
}

/// A metric that is not a column of the step records: logged by `metrics` records (`run.log`), or an imported tag
/// or column the run's mapping does not draw as the loss, an LR or an evaluation. Values in file order.
public struct MetricSeries: Sendable, Equatable {
    public var name: String
    public var steps: [Int]
    public var values: [Double]
    /// Seconds since the run started, one per value (NaN where unknown).
    public var wallTimes: [Double]

    public init(name: String, steps: [Int] = [], values: [Double] = [], wallTimes: [Double] = []) {
        self.name = name; self.steps = steps; self.values = values; self.wallTimes = wallTimes
    }

    public var count: Int { values.count }
}

/// One named series of an imported file (a TensorBoard tag, a CSV column): values in file order.
public struct ScalarSeries: Sendable, Equatable {
    public var tag: String
    public var steps: [Int]
    public var values: [Double]
    /// Absolute wall time (Unix seconds) of each value; empty when the source has none (CSV).
    public var wallTimes: [Double]

    public init(tag: String, steps: [Int] = [], values: [Double] = [], wallTimes: [Double] = []) {
        self.tag = tag; self.steps = steps; self.values = values; self.wallTimes = wallTimes
    }

    public var count: Int { values.count }

    /// The first value logged at `step`.
    public func value(atStep step: Int) -> Double? {
        steps.firstIndex(of: step).map { values[$0] }
    }
}
