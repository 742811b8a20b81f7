// Every scalar a run knows, by name: the built-in series (loss, LRs, gradient norm, throughput, evaluations) under
// the names `lrtop export` gives them as TensorBoard tags (an import keeps its own tag names), and the run's own
// metrics. The metrics grid, `replay --summary --metric` and the exports name them all the same way.

/// Where a named metric's values are in a run.
public enum MetricSource: Hashable, Sendable {
    case loss
    /// The LR of param group i.
    case lr(Int)
    case gradNorm
    case samplesPerSec
    case evalLoss
    case evalAccuracy
    /// One of the run's own metrics (`RunData.metricNames`), by name.
    case own(String)

    /// The names of a run log's built-in series, as `TensorBoardExport` writes them: `train/loss`, `train/lr` (with
    /// several groups `train/lr/<group>` each), `train/grad_norm`, `train/samples_per_sec`, `val/loss`, `val/acc`.
    public static func builtInName(_ source: MetricSource, groups: [String]) -> String {
        switch source {
        case .loss: return "train/loss"
        case .lr(let g):
            guard groups.count > 1 else { return "train/lr" }
            return "train/lr/" + (groups.indices.contains(g) ? groups[g] : "group\(g)")
        case .gradNorm: return "train/grad_norm"
        case .samplesPerSec: return "train/samples_per_sec"
        case .evalLoss: return "val/loss"
        case .evalAccuracy: return "val/acc"
        case .own(let name): return name
        }
    }

    /// The name of a built-in series in an import: the tag or column the mapping took it from.
    public static func importedName(_ source: MetricSource, mapping: TagMapping) -> String? {
        switch source {
        case .loss: return mapping.loss
        case .lr(let g): return mapping.lrs.indices.contains(g) ? mapping.lrs[g] : nil
        case .gradNorm: return mapping.gradNorm
        case .samplesPerSec: return mapping.samplesPerSec
        case .evalLoss: return mapping.evalLoss
        case .evalAccuracy: return mapping.evalAccuracy
        case .own(let name): return name
        }
    }
}

extension RunData {
    /// The run's own metrics, once each: the step records' columns, the evaluations', then the other series.
    public var metricNames: [String] {
        var seen = Set<String>()
        var names: [String] = []
        func add(_ n: String) { if seen.insert(n).inserted { names.append(n) } }
        steps.metricNames.forEach(add)
        for e in evals { e.metrics.forEach { add($0.name) } }
        metricSeries.forEach { add($0.name) }
        return names
    }

    /// Every series of the run by name: the built-in ones that hold a value (named as `MetricSource` says), then
    /// the run's own metrics. An import lists its tags in file order.
    public var namedMetrics: [(name: String, source: MetricSource)] {
        var builtIn: [MetricSource] = []
        if steps.loss.contains(where: { !$0.isNaN }) { builtIn.append(.loss) }
        for g in 0..<steps.groupCount where steps.lrs[g].contains(where: { !$0.isNaN }) { builtIn.append(.lr(g)) }
        if steps.gradNorm.contains(where: { !$0.isNaN }) { builtIn.append(.gradNorm) }
        if steps.samplesPerSec.contains(where: { !$0.isNaN }) { builtIn.append(.samplesPerSec) }
        if evals.contains(where: { !$0.loss.isNaN }) { builtIn.append(.evalLoss) }
        if evals.contains(where: { !$0.accuracy.isNaN }) { builtIn.append(.evalAccuracy) }
        guard format != .runLog else {
            let names = builtIn.map { MetricSource.builtInName($0, groups: groups) }
            let own = metricNames
            return zip(names, builtIn).map { ($0, $1) }
                + zip(ExportNames.unique(own, besides: names), own).map { ($0, MetricSource.own($1)) }
        }
        let own = metricNames.map { (name: $0, source: MetricSource.own($0)) }
        var named: [String: MetricSource] = [:]
        for b in builtIn { if let n = MetricSource.importedName(b, mapping: mapping) { named[n] = b } }
        for o in own { named[o.name] = o.source }
        // The file's order where the raw tags are still known, else built-ins first.
        let order = tags.isEmpty ? builtIn.compactMap { MetricSource.importedName($0, mapping: mapping) } + own.map(\.name) : tags
        var seen = Set<String>()
        return order.compactMap { n in named[n].flatMap { seen.insert(n).inserted ? (n, $0) : nil } }
    }

    /// The source of the series named `name` (see `namedMetrics`), or nil.
    public func metricSource(named name: String) -> MetricSource? {
        namedMetrics.first { $0.name == name }?.source
    }

    /// Every value of a series, ordered by step (file order within a step). A run log's built-in series give every
    /// row's value, NaN included; the run's own metrics, and an import's series, the values logged (NaN in their
    /// columns means "not logged").
    public func samples(_ source: MetricSource) -> (steps: [Int], values: [Double]) {
        var points: [(step: Int, value: Double)] = []
        func column(_ values: [Float]) { for i in values.indices { points.append((steps.step[i], Double(values[i]))) } }
        switch source {
        case .loss: column(steps.loss)
        case .lr(let g): if steps.lrs.indices.contains(g) { for i in steps.lrs[g].indices { points.append((steps.step[i], steps.lrs[g][i])) } }
        case .gradNorm: column(steps.gradNorm)
        case .samplesPerSec: column(steps.samplesPerSec)
        case .evalLoss: points = evals.map { ($0.step, $0.loss) }
        case .evalAccuracy: points = evals.map { ($0.step, $0.accuracy) }
        case .own(let name):
            if let c = steps.metric(named: name) {
                for i in c.indices where !c[i].isNaN { points.append((steps.step[i], Double(c[i]))) }
            }
            for e in evals { if let v = e.metrics[metric: name] { points.append((e.step, v)) } }
            for s in metricSeries where s.name == name { for k in s.steps.indices { points.append((s.steps[k], s.values[k])) } }
        }
        // In an import a built-in column is merged from several tags by step: NaN there means "not logged".
        if format != .runLog { points.removeAll { $0.value.isNaN } }
        let sorted = points.enumerated().sorted { ($0.element.step, $0.offset) < ($1.element.step, $1.offset) }.map(\.element)
        return (sorted.map(\.step), sorted.map(\.value))
    }
}

/// One series of a run summed up, for `lrtop replay --summary --metric NAME`: a pure function of the run's data.
public struct MetricSummary: Sendable, Equatable {
    public var name: String
    /// Values logged (non-finite ones included).
    public var count: Int
    public var firstStep: Int?
    public var lastStep: Int?
    /// The value at the last step it was logged at (the last in file order there).
    public var last: Double?
    /// The lowest and highest finite values, at the first step each was reached.
    public var min: (value: Double, step: Int)?
    public var max: (value: Double, step: Int)?
    public var mean: Double?
    /// Values that are NaN or infinite.
    public var nonFinite: Int

    /// The summary of series `name` of `run`, or nil when the run has no series of that name.
    public init?(_ run: RunData, metric name: String) {
        guard let source = run.metricSource(named: name) else { return nil }
        let (steps, values) = run.samples(source)
        self.name = name
        count = values.count
        firstStep = steps.first
        lastStep = steps.last
        last = values.last
        var lo: (Double, Int)? = nil, hi: (Double, Int)? = nil
        var sum = 0.0, finite = 0
        for (s, v) in zip(steps, values) where v.isFinite {
            if lo == nil || v < lo!.0 { lo = (v, s) }
            if hi == nil || v > hi!.0 { hi = (v, s) }
            sum += v
            finite += 1
        }
        min = lo.map { (value: $0.0, step: $0.1) }
        max = hi.map { (value: $0.0, step: $0.1) }
        mean = finite > 0 ? sum / Double(finite) : nil
        nonFinite = values.count - finite
    }

    public static func == (a: MetricSummary, b: MetricSummary) -> Bool {
        a.name == b.name && a.count == b.count && a.firstStep == b.firstStep && a.lastStep == b.lastStep
            && a.last?.bitPattern == b.last?.bitPattern && a.min?.value == b.min?.value && a.min?.step == b.min?.step
            && a.max?.value == b.max?.value && a.max?.step == b.max?.step && a.mean == b.mean && a.nonFinite == b.nonFinite
    }
}

/// Metric names reserved for what GPU users watch (docs/runlog.md, "Reserved metric names"). They are ordinary
/// metrics of step or metrics records (the bridge writes them); the status panel also shows them when present.
public enum SystemMetrics {
    /// Bytes: the most memory the run's tensors have held on the device (`torch.cuda.max_memory_allocated`).
    public static let gpuMemPeak = "gpu_mem_peak"
    /// Bytes the allocator holds from the device (`torch.cuda.memory_reserved`).
    public static let gpuMemReserved = "gpu_mem_reserved"
    /// Bytes of device memory in all.
    public static let gpuMemTotal = "gpu_mem_total"
    /// Percent (0–100) of the time the device was busy.
    public static let gpuUtil = "gpu_util"
    /// Seconds rank N's last step took: `step_time/rank0`, `step_time/rank1`, ...
    public static let rankStepTimePrefix = "step_time/rank"
}
