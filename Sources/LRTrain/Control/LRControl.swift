import LRTensor
import LROptim

/// Who writes the LR, and when.
///
/// The LR lives in the optimizer's param groups; three writers share it, with these rules (docs/steering.md):
/// - the scheduler writes it after each of its steps, in PyTorch's chainable form, so a manual change is the value
///   the next scheduler step continues from (`lr 3e-4` under StepLR stays 3e-4 until the next decay multiplies it);
/// - `lr hold` pins a group: the scheduler's clock runs on, but its writes to that group are undone until `lr release`;
/// - `lr release` hands the group back to the schedule *as planned*: the LR jumps to what the schedule would give now
///   had nobody intervened (a shadow copy of the scheduler that never sees manual changes), and follows it from there;
/// - `lr reset` puts the base LR back and restarts the schedule from its first step;
/// - `sched SPEC` replaces the scheduler, starting from the current LR so the curve does not jump;
/// - `warmup N` multiplies the scheduled LR by a ramp from 1/N to 1 over the next N steps, on top of the schedule.
public struct LRControl {
    private(set) var spec: String
    private(set) var scheduler: any LRScheduler
    /// The same schedule over LR-only groups that no manual change touches: "the schedule as planned".
    private(set) var shadow: any LRScheduler
    private let shadowOptimizer: ShadowOptimizer
    private(set) var context: ScheduleContext
    private(set) var held: [Bool]
    private(set) var overridden: [Bool]
    private(set) var warmupTotal = 0
    private(set) var warmupDone = 0

    public init(spec: String, optimizer: any Optimizer, context: ScheduleContext, baseLRs: [Double]? = nil) throws {
        self.spec = spec
        self.context = context
        self.shadowOptimizer = ShadowOptimizer(like: optimizer)
        if let baseLRs { for (g, lr) in zip(shadowOptimizer.groups, baseLRs) { g.lr = lr } }
        self.scheduler = try SchedulerFactory.make(spec: spec, optimizer: optimizer, context: context, baseLRs: baseLRs)
        self.shadow = try SchedulerFactory.make(spec: spec, optimizer: shadowOptimizer, context: context, baseLRs: baseLRs)
        self.held = Array(repeating: false, count: optimizer.groups.count)
        self.overridden = held
    }

    var needsMetric: Bool { scheduler.needsMetric }
    var statusText: String { scheduler.statusText }
    /// The scheduler's kind when it computes the LR from its step count (a manual LR would last one step).
    public var absoluteKind: String? { scheduler.absoluteKind }
    /// The schedule's own ramp (a `warmup` or a rising `linear` still raising the LR) and the scheduler steps it has left.
    public var scheduleRamp: (kind: String, stepsLeft: Int)? { scheduler.ramp }
    var warmupLeft: Int { max(0, warmupTotal - warmupDone) }

    /// One scheduler step: held groups keep their LR.
    public mutating func step(optimizer: any Optimizer, metric: Double?) {
        let pinned = optimizer.groups.map(\.lr)
        scheduler.step(metric: metric)
        shadow.step(metric: metric)
        for (g, group) in optimizer.groups.enumerated() where held[g] { group.lr = pinned[g] }
    }

    /// Runs the optimizer step with the warmup ramp applied to the groups' LRs, and returns the LRs it used.
    public mutating func applyingWarmup(to optimizer: any Optimizer, _ body: () -> Void) -> [Double] {
        let groups = optimizer.groups
        guard warmupDone < warmupTotal else {
            body()
            return groups.map(\.lr)
        }
        let factor = Double(warmupDone + 1) / Double(warmupTotal)
        let scheduled = groups.map(\.lr)
        for g in groups { g.lr *= factor }
        let used = groups.map(\.lr)
        body()
        for (g, lr) in zip(groups, scheduled) { g.lr = lr }
        warmupDone += 1
        return used
    }

    /// The LR per group for the next `count` steps if nothing intervenes (held groups stay flat, the warmup
    /// ramp included), or an empty list when the scheduler cannot know (ReduceLROnPlateau).
    func plan(count: Int, optimizer: any Optimizer) -> [[Double]] {
        guard var plan = scheduler.plan(count: count) else { return [] }
        let now = optimizer.groups.map(\.lr)
        for k in plan.indices {
            for g in plan[k].indices where g < held.count && held[g] { plan[k][g] = now[g] }
            let rampStep = warmupDone + k + 1
            if rampStep < warmupTotal {
                let f = Double(rampStep + 1) / Double(warmupTotal)
                plan[k] = plan[k].map { $0 * f }
            }
        }
        return plan
    }

    // MARK: commands

    public mutating func set(_ groups: [Int], optimizer: any Optimizer, _ value: (Double) -> Double) {
        for g in groups {
            optimizer.groups[g].lr = value(optimizer.groups[g].lr)
            overridden[g] = true
        }
    }

    public mutating func hold(_ groups: [Int]) { for g in groups { held[g] = true } }

    public mutating func release(_ groups: [Int], optimizer: any Optimizer) {
        for g in groups {
            held[g] = false
            overridden[g] = false
            optimizer.groups[g].lr = shadowOptimizer.groups[g].lr
        }
    }

    mutating func markOverridden(all count: Int) { for g in 0..<min(count, overridden.count) { overridden[g] = true } }

    /// Base LRs back and the schedule restarted from its first step.
    public mutating func reset(optimizer: any Optimizer) throws {
        for g in optimizer.groups { g.lr = g.initialLR }
        let fresh = try LRControl(spec: spec, optimizer: optimizer, context: context)
        self = fresh
    }

    /// Switches to a new scheduler whose base LRs are the current ones. The next step trains at the new schedule's
    /// first value, as with a PyTorch scheduler built mid-run (the current LR for cosine or step; a fraction of it
    /// for warmup, linear or onecycle); a held group keeps its LR.
    public mutating func switchScheduler(to newSpec: String, optimizer: any Optimizer, context newContext: ScheduleContext) throws {
        let current = optimizer.groups.map(\.lr)
        let next = try LRControl(spec: newSpec, optimizer: optimizer, context: newContext, baseLRs: current)
        let keepHeld = held
        self = next
        held = keepHeld
        for g in optimizer.groups.indices where keepHeld[g] { optimizer.groups[g].lr = current[g] }
    }

    public mutating func startWarmup(steps: Int) {
        warmupTotal = steps
        warmupDone = 0
    }

    // MARK: checkpoints

    struct State: Codable, Equatable {
        var spec: String
        var context: ContextState
        var scheduler: SchedulerState
        var shadow: SchedulerState
        var shadowLRs: [Double]
        var shadowInitialLRs: [Double]
        var held: [Bool]
        var overridden: [Bool]
        var warmupTotal: Int
        var warmupDone: Int
    }
    struct ContextState: Codable, Equatable { var totalSteps: Int; var stepsPerEpoch: Int }

    func snapshot() -> State {
        State(spec: spec, context: ContextState(totalSteps: context.totalSteps, stepsPerEpoch: context.stepsPerEpoch),
              scheduler: scheduler.stateSnapshot(), shadow: shadow.stateSnapshot(),
              shadowLRs: shadowOptimizer.groups.map(\.lr), shadowInitialLRs: shadowOptimizer.groups.map(\.initialLR),
              held: held, overridden: overridden, warmupTotal: warmupTotal, warmupDone: warmupDone)
    }

    static func restored(_ s: State, optimizer: any Optimizer) throws -> LRControl {
        let ctx = ScheduleContext(totalSteps: s.context.totalSteps, stepsPerEpoch: s.context.stepsPerEpoch)
        // Building a scheduler makes its initial step, which writes the groups' LRs (warmup's start factor,
        // onecycle's first LR, a sequence's base LRs). The restored optimizer already holds the LRs in force at
        // the checkpoint: those must win, or the resumed run continues from the schedule's start value.
        let restoredLRs = optimizer.groups.map(\.lr)
        var c = try LRControl(spec: s.spec, optimizer: optimizer, context: ctx)
        for (g, lr) in zip(optimizer.groups, restoredLRs) { g.lr = lr }
        for (g, lr) in zip(c.shadowOptimizer.groups, s.shadowLRs) { g.lr = lr }
        for (g, lr) in zip(c.shadowOptimizer.groups, s.shadowInitialLRs) { g.initialLR = lr }
        try c.scheduler.restore(s.scheduler)
        try c.shadow.restore(s.shadow)
        c.held = s.held
        c.overridden = s.overridden
        c.warmupTotal = s.warmupTotal
        c.warmupDone = s.warmupDone
        return c
    }
}

/// An optimizer with the real one's groups and LRs but no parameters: the shadow scheduler writes into it.
final class ShadowOptimizer: Optimizer {
    let name = "shadow"
    let groups: [ParamGroup]
    init(like optimizer: any Optimizer) {
        groups = optimizer.groups.map { g in
            let copy = ParamGroup(name: g.name, params: [], lr: g.lr, hyper: g.hyper)
            copy.initialLR = g.initialLR
            return copy
        }
    }
    func step() {}
    func stateSnapshot() -> OptimizerState { OptimizerState() }
    func restore(_ state: OptimizerState) throws {}
    var summary: String { "shadow" }
}
