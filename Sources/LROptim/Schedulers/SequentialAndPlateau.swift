import Foundation

/// `A -> B -> C` — PyTorch `SequentialLR`: runs each scheduler in turn, switching at the milestones.
///
/// At a milestone the next scheduler restarts from its closed form at step 0 (PyTorch's `_update_lr(0)`), so
/// `warmup:steps=5 -> cosine` gives base·(k+1)/5 for k < 5, then the base again at step 5, then the cosine.
/// On construction the groups' LRs are reset to the base LRs and only the first scheduler's initial step
/// counts, as in PyTorch.
public final class SequentialSchedule: SchedulerBase, @unchecked Sendable {
    public let children: [SchedulerBase]
    override public var needsMetric: Bool { children.contains { $0.needsMetric } }
    public override var absoluteKind: String? { children[childIndex(max(lastEpoch, 0))].absoluteKind }
    public let milestones: [Int]
    /// The part in charge's ramp, lasting until the next part restarts from its base LR at its milestone.
    public override var ramp: (kind: String, stepsLeft: Int)? {
        let done = max(lastEpoch, 0), idx = childIndex(done), child = children[idx]
        // `warmup:steps=N` reaches its base at step N-1, and the milestone at N restarts the next part from it:
        // the step between still belongs to the ramp.
        if idx < milestones.count, let linear = child as? LinearLRSchedule, linear.startFactor < linear.endFactor {
            return (child.kind, milestones[idx] - done)
        }
        return child.ramp
    }

    init(groups: [ParamGroup], baseLRs: [Double], children: [SchedulerBase], milestones: [Int]) {
        precondition(children.count == milestones.count + 1)
        self.children = children; self.milestones = milestones
        super.init(kind: "sequential", groups: groups, baseLRs: baseLRs)
        lastEpoch = 0
        for (g, lr) in zip(groups, baseLRs) { g.lr = lr }
        for c in children { c.lastEpoch -= 1 }
        children[0].initialStep()
    }

    /// Index of the child in charge at `epoch` (Python's `bisect_right(milestones, epoch)`).
    func childIndex(_ epoch: Int) -> Int { milestones.filter { $0 <= epoch }.count }

    override func advance(metric: Double?) {
        lastEpoch += 1
        let idx = childIndex(lastEpoch)
        if idx > 0 && milestones[idx - 1] == lastEpoch {
            children[idx].restartAtMilestone()
        } else {
            children[idx].step(metric: metric)
        }
    }

    public override func closedFormLRs(at epoch: Int) -> [Double]? {
        let idx = childIndex(epoch)
        return children[idx].closedFormLRs(at: epoch - (idx > 0 ? milestones[idx - 1] : 0))
    }

    public override var spec: String {
        var s = children[0].spec
        for (i, m) in milestones.enumerated() { s += " -> @\(m) " + children[i + 1].spec }
        return s
    }
    public override var length: Int? { children.last!.length.map { $0 + (milestones.last ?? 0) } }
    public override var statusText: String {
        let idx = childIndex(max(lastEpoch, 0))
        return "\(children[idx].statusText) [\(idx + 1)/\(children.count)]"
    }

    override func childStates() -> [SchedulerState] { children.map { $0.stateSnapshot() } }
    override func restoreChildren(_ states: [SchedulerState]) throws {
        guard states.count == children.count else {
            throw OptimError("scheduler state has \(states.count) sequence parts, this sequence has \(children.count)")
        }
        for (c, s) in zip(children, states) { try c.restore(s) }
    }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        SequentialSchedule(groups: groups, baseLRs: baseLRs, children: children.map { $0.makeTwin(on: groups) },
                           milestones: milestones)
    }
}

/// `plateau` — PyTorch `ReduceLROnPlateau`: × `factor` (not below `min_lr`) once the metric has not improved
/// for more than `patience` steps, then waits `cooldown` steps. A step without a metric is ignored.
public final class PlateauSchedule: SchedulerBase, @unchecked Sendable {
    public let mode: String, factor: Double, patience: Int, threshold: Double, thresholdMode: String
    public let cooldown: Int, minLRs: [Double], eps: Double
    /// The best metric so far (nil before the first).
    public private(set) var best: Double?
    public private(set) var numBadEpochs = 0, cooldownCounter = 0
    override public var needsMetric: Bool { true }

    init(groups: [ParamGroup], baseLRs: [Double], mode: String, factor: Double, patience: Int, threshold: Double,
         thresholdMode: String, cooldown: Int, minLRs: [Double], eps: Double) throws {
        guard factor < 1.0 else { throw OptimError("plateau: Factor should be < 1.0.") }
        guard minLRs.count == groups.count else {
            throw OptimError("plateau: expected \(groups.count) min_lrs, got \(minLRs.count)")
        }
        self.mode = mode; self.factor = factor; self.patience = patience; self.threshold = threshold
        self.thresholdMode = thresholdMode; self.cooldown = cooldown; self.minLRs = minLRs; self.eps = eps
        super.init(kind: "plateau", groups: groups, baseLRs: baseLRs)
        lastEpoch = 0
    }

    func isBetter(_ a: Double, than best: Double?) -> Bool {
        guard let best else { return true }   // PyTorch: best starts at ±inf
        switch (mode, thresholdMode) {
        case ("min", "rel"): return a < best * (1.0 - threshold)
        case ("min", _): return a < best - threshold
        case (_, "rel"): return a > best * (threshold + 1.0)
        default: return a > best + threshold
        }
    }

    override func advance(metric: Double?) {
        guard let current = metric else { return }
        lastEpoch += 1
        if isBetter(current, than: best) {
            best = current
            numBadEpochs = 0
        } else {
            numBadEpochs += 1
        }
        if cooldownCounter > 0 {
            cooldownCounter -= 1
            numBadEpochs = 0
        }
        if numBadEpochs > patience {
            for (i, g) in groups.enumerated() {
                let old = g.lr
                let new = max(old * factor, minLRs[i])
                if old - new > eps { g.lr = new }
            }
            cooldownCounter = cooldown
            numBadEpochs = 0
        }
    }

    override func restartAtMilestone() {}
    public override func plan(count: Int) -> [[Double]]? { nil }

    override func extraState(values: inout [String: Double], lists: inout [String: [Double]]) {
        if let best { values["best"] = best }
        values["num_bad_epochs"] = Double(numBadEpochs)
        values["cooldown_counter"] = Double(cooldownCounter)
    }
    override func restoreExtra(values: [String: Double], lists: [String: [Double]]) throws {
        best = values["best"]
        numBadEpochs = Int(values["num_bad_epochs"] ?? 0)
        cooldownCounter = Int(values["cooldown_counter"] ?? 0)
    }

    public override var spec: String {
        let minLR = Set(minLRs).count <= 1 ? specNumber(minLRs.first ?? 0) : minLRs.map(specNumber).joined(separator: "/")
        return "plateau:mode=\(mode),factor=\(specNumber(factor)),patience=\(patience),threshold=\(specNumber(threshold))"
            + ",threshold_mode=\(thresholdMode),cooldown=\(cooldown),min_lr=\(minLR),eps=\(specNumber(eps))"
    }
    public override var statusText: String {
        let b = best.map { String(format: "%.4g", $0) } ?? "-"
        if cooldownCounter > 0 { return "plateau best=\(b) cooldown \(cooldownCounter)" }
        return "plateau best=\(b) patience \(numBadEpochs)/\(patience)"
    }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        try! PlateauSchedule(groups: groups, baseLRs: baseLRs, mode: mode, factor: factor, patience: patience,
                             threshold: threshold, thresholdMode: thresholdMode, cooldown: cooldown,
                             minLRs: minLRs, eps: eps)
    }
}
