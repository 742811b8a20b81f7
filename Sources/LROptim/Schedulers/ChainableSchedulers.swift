import Foundation

// PyTorch's chainable schedulers: each step multiplies (or shifts) the group's *current* LR, so a manual
// write between steps is what the schedule continues from. Formulas follow torch.optim.lr_scheduler op by op.

/// `constantlr` — PyTorch `ConstantLR`: the LR × `factor` until `total_iters`, then back to the base.
public final class ConstantLRSchedule: SchedulerBase, @unchecked Sendable {
    public let factor: Double, totalIters: Int
    init(groups: [ParamGroup], baseLRs: [Double], factor: Double, totalIters: Int) throws {
        guard factor <= 1.0 && factor >= 0 else {
            throw OptimError("constantlr: Constant multiplicative factor expected to be between 0 and 1.")
        }
        self.factor = factor; self.totalIters = totalIters
        super.init(kind: "constantlr", groups: groups, baseLRs: baseLRs)
        initialStep()
    }
    override func chainableLRs() -> [Double] {
        if lastEpoch == 0 { return currentLRs.map { $0 * factor } }
        if lastEpoch != totalIters { return currentLRs }
        return currentLRs.map { $0 * (1.0 / factor) }
    }
    public override func closedFormLRs(at epoch: Int) -> [Double]? {
        baseLRs.map { $0 * (factor + (epoch >= totalIters ? 1 : 0) * (1 - factor)) }
    }
    public override var spec: String { "constantlr:factor=\(specNumber(factor)),total_iters=\(totalIters)" }
    public override var length: Int? { totalIters }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        try! ConstantLRSchedule(groups: groups, baseLRs: baseLRs, factor: factor, totalIters: totalIters)
    }
}

/// `step` — PyTorch `StepLR`: × `gamma` every `step_size` steps.
public final class StepLRSchedule: SchedulerBase, @unchecked Sendable {
    public let stepSize: Int, gamma: Double
    init(groups: [ParamGroup], baseLRs: [Double], stepSize: Int, gamma: Double) throws {
        guard stepSize > 0 else { throw OptimError("step: step_size must be a positive integer (got \(stepSize))") }
        self.stepSize = stepSize; self.gamma = gamma
        super.init(kind: "step", groups: groups, baseLRs: baseLRs)
        initialStep()
    }
    override func chainableLRs() -> [Double] {
        if lastEpoch == 0 || lastEpoch % stepSize != 0 { return currentLRs }
        return currentLRs.map { $0 * gamma }
    }
    public override func closedFormLRs(at epoch: Int) -> [Double]? {
        baseLRs.map { $0 * pow(gamma, Double(floorDiv(epoch, stepSize))) }
    }
    public override var spec: String { "step:step_size=\(stepSize),gamma=\(specNumber(gamma))" }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        try! StepLRSchedule(groups: groups, baseLRs: baseLRs, stepSize: stepSize, gamma: gamma)
    }
}

/// `multistep` — PyTorch `MultiStepLR`: × `gamma` at each milestone (a repeated milestone counts twice).
public final class MultiStepLRSchedule: SchedulerBase, @unchecked Sendable {
    public let milestones: [Int], gamma: Double
    init(groups: [ParamGroup], baseLRs: [Double], milestones: [Int], gamma: Double) {
        self.milestones = milestones.sorted(); self.gamma = gamma
        super.init(kind: "multistep", groups: groups, baseLRs: baseLRs)
        initialStep()
    }
    override func chainableLRs() -> [Double] {
        let hits = milestones.filter { $0 == lastEpoch }.count
        if hits == 0 { return currentLRs }
        return currentLRs.map { $0 * pow(gamma, Double(hits)) }
    }
    public override func closedFormLRs(at epoch: Int) -> [Double]? {
        let passed = milestones.filter { $0 <= epoch }.count
        return baseLRs.map { $0 * pow(gamma, Double(passed)) }
    }
    public override var spec: String {
        "multistep:milestones=\(milestones.map(String.init).joined(separator: "/")),gamma=\(specNumber(gamma))"
    }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        MultiStepLRSchedule(groups: groups, baseLRs: baseLRs, milestones: milestones, gamma: gamma)
    }
}

/// `exp` — PyTorch `ExponentialLR`: × `gamma` every step.
public final class ExponentialLRSchedule: SchedulerBase, @unchecked Sendable {
    public let gamma: Double
    init(groups: [ParamGroup], baseLRs: [Double], gamma: Double) {
        self.gamma = gamma
        super.init(kind: "exp", groups: groups, baseLRs: baseLRs)
        initialStep()
    }
    override func chainableLRs() -> [Double] {
        isInitial ? currentLRs : currentLRs.map { $0 * gamma }
    }
    public override func closedFormLRs(at epoch: Int) -> [Double]? { baseLRs.map { $0 * pow(gamma, Double(epoch)) } }
    public override var spec: String { "exp:gamma=\(specNumber(gamma))" }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        ExponentialLRSchedule(groups: groups, baseLRs: baseLRs, gamma: gamma)
    }
}

/// `cosine` — PyTorch `CosineAnnealingLR` in its recursive (chainable) form, including its behaviour past
/// `T_max`: the LR rises again along the same cosine (period 2·T_max), it does not stay at `eta_min`.
public final class CosineAnnealingLRSchedule: SchedulerBase, @unchecked Sendable {
    public let tMax: Int, etaMin: Double
    init(groups: [ParamGroup], baseLRs: [Double], tMax: Int, etaMin: Double) throws {
        guard tMax > 0 else { throw OptimError("cosine: T_max must be a positive integer (got \(tMax))") }
        self.tMax = tMax; self.etaMin = etaMin
        super.init(kind: "cosine", groups: groups, baseLRs: baseLRs)
        initialStep()
    }
    override func chainableLRs() -> [Double] {
        let T = Double(tMax), e = Double(lastEpoch)
        if isInitial { return currentLRs }
        if stepCount == 1 && lastEpoch > 0 {
            return baseLRs.map { etaMin + ($0 - etaMin) * (1 + cos(e * Double.pi / T)) / 2 }
        }
        if (lastEpoch - 1 - tMax) % (2 * tMax) == 0 {
            return zip(baseLRs, currentLRs).map { base, lr in lr + (base - etaMin) * (1 - cos(Double.pi / T)) / 2 }
        }
        return currentLRs.map { lr in
            (1 + cos(Double.pi * e / T)) / (1 + cos(Double.pi * (e - 1) / T)) * (lr - etaMin) + etaMin
        }
    }
    public override func closedFormLRs(at epoch: Int) -> [Double]? {
        baseLRs.map { etaMin + ($0 - etaMin) * (1 + cos(Double.pi * Double(epoch) / Double(tMax))) / 2 }
    }
    public override var spec: String { "cosine:T_max=\(tMax),eta_min=\(specNumber(etaMin))" }
    public override var length: Int? { tMax }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        try! CosineAnnealingLRSchedule(groups: groups, baseLRs: baseLRs, tMax: tMax, etaMin: etaMin)
    }
}

/// `linear` — PyTorch `LinearLR`: the factor moves linearly from `start_factor` to `end_factor` over
/// `total_iters` steps. `warmup:steps=N` is this with `start_factor=1/N`, `end_factor=1`, `total_iters=N-1`
/// (the LR is base·(k+1)/N at step k and reaches the base at step N-1), and the length N inside `->`.
public final class LinearLRSchedule: SchedulerBase, @unchecked Sendable {
    public let startFactor: Double, endFactor: Double, totalIters: Int
    /// For `warmup`: the `steps=` it was given.
    public let warmupSteps: Int?
    init(groups: [ParamGroup], baseLRs: [Double], startFactor: Double, endFactor: Double, totalIters: Int,
         warmupSteps: Int? = nil) throws {
        let name = warmupSteps == nil ? "linear" : "warmup"
        guard startFactor <= 1.0 && startFactor > 0 else {
            throw OptimError("\(name): Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
        }
        guard endFactor <= 1.0 && endFactor >= 0 else {
            throw OptimError("\(name): Ending multiplicative factor expected to be between 0 and 1.")
        }
        guard totalIters >= 0 else { throw OptimError("\(name): total_iters must be >= 0 (got \(totalIters))") }
        self.startFactor = startFactor; self.endFactor = endFactor; self.totalIters = totalIters
        self.warmupSteps = warmupSteps
        super.init(kind: name, groups: groups, baseLRs: baseLRs)
        initialStep()
    }
    override func chainableLRs() -> [Double] {
        if lastEpoch == 0 { return currentLRs.map { $0 * startFactor } }
        if isInitial || lastEpoch > totalIters { return currentLRs }
        let ratio = 1.0 + (endFactor - startFactor)
            / (Double(totalIters) * startFactor + Double(lastEpoch - 1) * (endFactor - startFactor))
        return currentLRs.map { $0 * ratio }
    }
    public override func closedFormLRs(at epoch: Int) -> [Double]? {
        // total_iters = 0 (`warmup:steps=1`): PyTorch would divide by zero; the factor is start_factor at 0.
        guard totalIters > 0 else { return baseLRs.map { $0 * (epoch > 0 ? endFactor : startFactor) } }
        return baseLRs.map {
            $0 * (startFactor + (endFactor - startFactor) * Double(min(totalIters, epoch)) / Double(totalIters))
        }
    }
    public override var spec: String {
        if let warmupSteps { return "warmup:steps=\(warmupSteps),start_factor=\(specNumber(startFactor))" }
        return "linear:start_factor=\(specNumber(startFactor)),end_factor=\(specNumber(endFactor)),total_iters=\(totalIters)"
    }
    public override var length: Int? { warmupSteps ?? totalIters }
    /// Raising (a warmup), the chainable step writes a growing factor up to `total_iters`. (Falling, it is a decay
    /// like cosine's: a manual LR is what it goes on decaying from.)
    public override var ramp: (kind: String, stepsLeft: Int)? {
        let done = max(lastEpoch, 0)
        guard startFactor < endFactor, done < totalIters else { return nil }
        return (kind, totalIters - done)
    }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        try! LinearLRSchedule(groups: groups, baseLRs: baseLRs, startFactor: startFactor, endFactor: endFactor,
                              totalIters: totalIters, warmupSteps: warmupSteps)
    }
}

/// `poly` — PyTorch `PolynomialLR`: base·(1 − t/total_iters)^power, 0 from `total_iters` on.
public final class PolynomialLRSchedule: SchedulerBase, @unchecked Sendable {
    public let totalIters: Int, power: Double
    init(groups: [ParamGroup], baseLRs: [Double], totalIters: Int, power: Double) throws {
        guard totalIters > 0 else { throw OptimError("poly: total_iters must be a positive integer (got \(totalIters))") }
        self.totalIters = totalIters; self.power = power
        super.init(kind: "poly", groups: groups, baseLRs: baseLRs)
        initialStep()
    }
    override func chainableLRs() -> [Double] {
        if isInitial || lastEpoch > totalIters { return currentLRs }
        let T = Double(totalIters), e = Double(lastEpoch)
        let decay = pow((1.0 - e / T) / (1.0 - (e - 1) / T), power)
        return currentLRs.map { $0 * decay }
    }
    public override func closedFormLRs(at epoch: Int) -> [Double]? {
        baseLRs.map { $0 * pow(1.0 - Double(min(totalIters, epoch)) / Double(totalIters), power) }
    }
    public override var spec: String { "poly:total_iters=\(totalIters),power=\(specNumber(power))" }
    public override var length: Int? { totalIters }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        try! PolynomialLRSchedule(groups: groups, baseLRs: baseLRs, totalIters: totalIters, power: power)
    }
}

/// Python's floor division for ints.
func floorDiv(_ a: Int, _ b: Int) -> Int {
    let q = a / b
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q
}
