/// The step records of a run, one array per field, in file order (steps can repeat or go back after a
/// rollback). Memory per step: 32 bytes + 8 per LR group, so 1M steps with one group take 40 MB.
/// Loss, gradient norm and throughput are Float32: ample for plotting and for the 6-7 significant
/// digits the UI shows. LRs stay Double: a typed `lr 3e-4` must read back as 0.0003, not 0.00030000001.
/// Wall time stays Double: Float32 would round a 10-day run to 0.06 s.
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

    public init() {}

    public var count: Int { step.count }
    public var isEmpty: Bool { step.isEmpty }
    public var groupCount: Int { lrs.count }

    public mutating func reserveCapacity(_ n: Int, groups: Int) {
        step.reserveCapacity(n); epoch.reserveCapacity(n); loss.reserveCapacity(n)
        gradNorm.reserveCapacity(n); samplesPerSec.reserveCapacity(n); wallTime.reserveCapacity(n)
        while lrs.count < groups { lrs.append([]) }
        for g in lrs.indices { lrs[g].reserveCapacity(n) }
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
    }

    /// Row `i` as a record (loss, gradient norm and throughput at Float32 precision).
    public func record(at i: Int) -> StepRecord {
        StepRecord(step: step[i], epoch: Int(epoch[i]), lrs: lrs.map { $0[i] }, loss: Double(loss[i]),
                   gradNorm: Double(gradNorm[i]), samplesPerSec: Double(samplesPerSec[i]), wallTime: wallTime[i])
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
    }
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
