import Foundation

// Schedulers whose LR is a function of the step count (PyTorch computes them from base values, not from the
// current LR): a manual LR write lasts until their next step.

/// `warm_restarts` — PyTorch `CosineAnnealingWarmRestarts` (SGDR): cosine from the base to `eta_min` over
/// `T_0` steps, then restart, each period `T_mult` times longer.
public final class WarmRestartsSchedule: SchedulerBase, @unchecked Sendable {
    public override var absoluteKind: String? { kind }
    public let t0: Int, tMult: Int, etaMin: Double
    /// Steps since the last restart, and the current period.
    public private(set) var tCur: Int, tI: Int
    init(groups: [ParamGroup], baseLRs: [Double], t0: Int, tMult: Int, etaMin: Double) throws {
        guard t0 > 0 else { throw OptimError("warm_restarts: Expected positive integer T_0, but got \(t0)") }
        guard tMult >= 1 else { throw OptimError("warm_restarts: Expected integer T_mult >= 1, but got \(tMult)") }
        self.t0 = t0; self.tMult = tMult; self.etaMin = etaMin
        tCur = -1; tI = t0
        super.init(kind: "warm_restarts", groups: groups, baseLRs: baseLRs)
        initialStep()
    }
    /// PyTorch overrides `step()`: the first step (epoch 0) resets the cycle, later ones advance `T_cur`.
    override func advance(metric: Double?) {
        if lastEpoch < 0 {
            tI = t0; tCur = 0; lastEpoch = 0
        } else {
            lastEpoch += 1
            tCur += 1
            if tCur >= tI { tCur = tCur % tI; tI = tI * tMult }
        }
        write(chainableLRs())
    }
    override func restartAtMilestone() {
        tCur = 0; tI = t0
        super.restartAtMilestone()
    }
    override func chainableLRs() -> [Double] {
        baseLRs.map { etaMin + ($0 - etaMin) * (1 + cos(Double.pi * Double(tCur) / Double(tI))) / 2 }
    }
    public override func closedFormLRs(at epoch: Int) -> [Double]? {
        var cur = epoch, len = t0
        while cur >= len { cur -= len; len *= tMult }
        return baseLRs.map { etaMin + ($0 - etaMin) * (1 + cos(Double.pi * Double(cur) / Double(len))) / 2 }
    }
    override func extraState(values: inout [String: Double], lists: inout [String: [Double]]) {
        values["T_cur"] = Double(tCur); values["T_i"] = Double(tI)
    }
    override func restoreExtra(values: [String: Double], lists: [String: [Double]]) throws {
        if let c = values["T_cur"] { tCur = Int(c) }
        if let i = values["T_i"] { tI = Int(i) }
    }
    public override var spec: String { "warm_restarts:T_0=\(t0),T_mult=\(tMult),eta_min=\(specNumber(etaMin))" }
    public override var statusText: String { "warm_restarts \(tCur)/\(tI)" }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        try! WarmRestartsSchedule(groups: groups, baseLRs: baseLRs, t0: t0, tMult: tMult, etaMin: etaMin)
    }
}

/// `onecycle` — PyTorch `OneCycleLR` (with `cycle_momentum=False`): from max_lr/div_factor up to `max_lr`
/// over `pct_start` of the run, then down to initial/final_div_factor (`three_phase`: symmetric up/down, then a
/// third phase to the minimum). Past `total_steps` it holds the last LR (PyTorch raises instead).
public final class OneCycleSchedule: SchedulerBase, @unchecked Sendable {
    public override var absoluteKind: String? { kind }
    public let maxLRs: [Double], explicitMaxLR: Double?, totalSteps: Int, pctStart: Double
    public let annealStrategy: String, divFactor: Double, finalDivFactor: Double, threePhase: Bool
    let initialLRs: [Double], minLRs: [Double]
    struct Phase { let endStep: Double; let start: Int; let end: Int }   // 0 initial, 1 max, 2 min
    let phases: [Phase]

    init(groups: [ParamGroup], baseLRs: [Double], maxLR: Double?, totalSteps: Int, pctStart: Double,
         annealStrategy: String, divFactor: Double, finalDivFactor: Double, threePhase: Bool) throws {
        guard totalSteps > 0 else { throw OptimError("onecycle: Expected positive integer total_steps, but got \(totalSteps)") }
        guard pctStart >= 0 && pctStart <= 1 else {
            throw OptimError("onecycle: Expected float between 0 and 1 pct_start, but got \(pyRepr(pctStart))")
        }
        explicitMaxLR = maxLR
        maxLRs = maxLR.map { m in baseLRs.map { _ in m } } ?? baseLRs
        self.totalSteps = totalSteps; self.pctStart = pctStart; self.annealStrategy = annealStrategy
        self.divFactor = divFactor; self.finalDivFactor = finalDivFactor; self.threePhase = threePhase
        initialLRs = maxLRs.map { $0 / divFactor }
        minLRs = initialLRs.map { $0 / finalDivFactor }
        let total = Double(totalSteps)
        if threePhase {
            phases = [Phase(endStep: pctStart * total - 1, start: 0, end: 1),
                      Phase(endStep: 2 * pctStart * total - 2, start: 1, end: 0),
                      Phase(endStep: total - 1, start: 0, end: 2)]
        } else {
            phases = [Phase(endStep: pctStart * total - 1, start: 0, end: 1),
                      Phase(endStep: total - 1, start: 1, end: 2)]
        }
        super.init(kind: "onecycle", groups: groups, baseLRs: baseLRs)
        initialStep()
    }

    override func advance(metric: Double?) {
        if lastEpoch >= totalSteps && !isInitial { stepCount += 1; lastEpoch += 1; return }
        super.advance(metric: metric)
    }

    override func chainableLRs() -> [Double] { lrs(at: lastEpoch) }

    func lrs(at step: Int) -> [Double] {
        let stepNum = Double(step)
        return (0..<maxLRs.count).map { g in
            let values = [initialLRs[g], maxLRs[g], minLRs[g]]
            var startStep = 0.0
            for (i, phase) in phases.enumerated() {
                if stepNum <= phase.endStep || i == phases.count - 1 {
                    let pct = (stepNum - startStep) / (phase.endStep - startStep)
                    return anneal(values[phase.start], values[phase.end], pct)
                }
                startStep = phase.endStep
            }
            return values[2]
        }
    }

    func anneal(_ start: Double, _ end: Double, _ pct: Double) -> Double {
        if annealStrategy == "cos" {
            let cosOut = cos(Double.pi * pct) + 1
            return end + (start - end) / 2.0 * cosOut
        }
        return (end - start) * pct + start
    }

    public override func closedFormLRs(at epoch: Int) -> [Double]? { lrs(at: min(epoch, totalSteps)) }
    public override var length: Int? { totalSteps }
    public override var spec: String {
        var s = "onecycle:"
        if let explicitMaxLR { s += "max_lr=\(specNumber(explicitMaxLR))," }
        s += "total_steps=\(totalSteps),pct_start=\(specNumber(pctStart)),anneal_strategy=\(annealStrategy),"
        s += "div_factor=\(specNumber(divFactor)),final_div_factor=\(specNumber(finalDivFactor)),three_phase=\(threePhase)"
        return s
    }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        try! OneCycleSchedule(groups: groups, baseLRs: baseLRs, maxLR: explicitMaxLR, totalSteps: totalSteps,
                              pctStart: pctStart, annealStrategy: annealStrategy, divFactor: divFactor,
                              finalDivFactor: finalDivFactor, threePhase: threePhase)
    }
}

/// `cyclic` — PyTorch `CyclicLR` (with `cycle_momentum=False`): triangular cycles between `base_lr` and
/// `max_lr` (`triangular2` halves the amplitude each cycle, `exp_range` scales it by gamma^step).
/// Without `base_lr` the cycle starts at each group's base LR.
public final class CyclicSchedule: SchedulerBase, @unchecked Sendable {
    public override var absoluteKind: String? { kind }
    public let explicitBaseLR: Double?, maxLR: Double, stepSizeUp: Int, stepSizeDown: Int?
    public let mode: String, gamma: Double
    let totalSize: Double, stepRatio: Double

    init(groups: [ParamGroup], baseLRs: [Double], baseLR: Double?, maxLR: Double, stepSizeUp: Int,
         stepSizeDown: Int?, mode: String, gamma: Double) throws {
        guard stepSizeUp > 0, (stepSizeDown ?? 1) > 0 else {
            throw OptimError("cyclic: step_size_up and step_size_down must be positive integers")
        }
        explicitBaseLR = baseLR; self.maxLR = maxLR; self.stepSizeUp = stepSizeUp; self.stepSizeDown = stepSizeDown
        self.mode = mode; self.gamma = gamma
        let up = Double(stepSizeUp), down = Double(stepSizeDown ?? stepSizeUp)
        totalSize = up + down
        stepRatio = up / totalSize
        super.init(kind: "cyclic", groups: groups, baseLRs: baseLR.map { b in baseLRs.map { _ in b } } ?? baseLRs)
        initialStep()
    }

    override func chainableLRs() -> [Double] { lrs(at: lastEpoch) }

    func lrs(at epoch: Int) -> [Double] {
        let e = Double(epoch)
        let cycle = (1 + e / totalSize).rounded(.down)
        let x = 1.0 + e / totalSize - cycle
        let scaleFactor = x <= stepRatio ? x / stepRatio : (x - 1) / (stepRatio - 1)
        return baseLRs.map { base in
            let height = (maxLR - base) * scaleFactor
            switch mode {
            case "triangular2": return base + height * (1 / pow(2.0, cycle - 1))
            case "exp_range": return base + height * pow(gamma, e)
            default: return base + height * 1.0
            }
        }
    }

    public override func closedFormLRs(at epoch: Int) -> [Double]? { lrs(at: epoch) }
    public override var statusText: String {
        let cycle = Int((1 + Double(max(lastEpoch, 0)) / totalSize).rounded(.down))
        return "cyclic cycle \(cycle) step \(max(lastEpoch, 0))"
    }
    public override var spec: String {
        var s = "cyclic:"
        if let explicitBaseLR { s += "base_lr=\(specNumber(explicitBaseLR))," }
        s += "max_lr=\(specNumber(maxLR)),step_size_up=\(stepSizeUp),"
        if let stepSizeDown { s += "step_size_down=\(stepSizeDown)," }
        s += "mode=\(mode),gamma=\(specNumber(gamma))"
        return s
    }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase {
        try! CyclicSchedule(groups: groups, baseLRs: baseLRs, baseLR: explicitBaseLR, maxLR: maxLR,
                            stepSizeUp: stepSizeUp, stepSizeDown: stepSizeDown, mode: mode, gamma: gamma)
    }
}
