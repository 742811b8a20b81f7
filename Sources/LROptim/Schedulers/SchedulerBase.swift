import Foundation

/// The base class of every LR scheduler: PyTorch's `LRScheduler` (`base_lrs`, `last_epoch`, `_step_count`,
/// the initial step at construction), stepping with the *chainable* form where PyTorch's `get_lr()` uses it.
///
/// Who wins after a manual LR write: the group. Chainable schedulers (`constantlr`, `step`, `multistep`,
/// `exp`, `cosine`, `linear`, `warmup`, `poly`) continue from whatever `group.lr` holds at their next step, so
/// `lr 0.05` typed mid-run is what the schedule continues from. Absolute schedulers (`onecycle`, `cyclic`,
/// `warm_restarts`) recompute the LR from the step count and overwrite a manual write at their next step, as
/// in PyTorch. `plateau` reduces whatever the group holds; `constant` never writes.
///
/// `plan(count:)` predicts by running the same step function on a copy of the state and of the groups' current
/// LRs (a dry run), so the plan equals what stepping will do, manual writes included. The closed forms, where
/// PyTorch has them, are available as `closedFormLRs(at:)` (used by `SequentialLR` at its milestones).
public class SchedulerBase: LRScheduler, @unchecked Sendable {
    /// The CLI name: `cosine`, `warmup`, `plateau` ...
    public let kind: String
    public let groups: [ParamGroup]
    /// PyTorch's `base_lrs`: the LRs the schedule is relative to.
    public internal(set) var baseLRs: [Double]
    /// PyTorch's `last_epoch`: scheduler steps taken (0 right after construction).
    public internal(set) var lastEpoch: Int = -1
    /// PyTorch's `_step_count`.
    var stepCount = 0
    /// True during the step made at construction (PyTorch's `_is_initial`).
    var isInitial = false

    init(kind: String, groups: [ParamGroup], baseLRs: [Double]) {
        self.kind = kind; self.groups = groups; self.baseLRs = baseLRs
    }

    // MARK: stepping

    public func step(metric: Double? = nil) { advance(metric: metric) }

    public var needsMetric: Bool { false }
    public var absoluteKind: String? { nil }
    public var ramp: (kind: String, stepsLeft: Int)? { nil }

    /// PyTorch's `step()`: `_step_count += 1; last_epoch += 1; lr = get_lr()`.
    func advance(metric: Double?) {
        stepCount += 1
        lastEpoch += 1
        write(chainableLRs())
    }

    /// PyTorch's `_initial_step()`, made at construction.
    func initialStep() {
        stepCount = 0
        isInitial = true
        advance(metric: nil)
        isInitial = false
    }

    /// PyTorch's `_update_lr(0)`, as `SequentialLR` calls it at a milestone: the closed form at 0 where the
    /// class has one, else `get_lr()` at `last_epoch = 0`.
    func restartAtMilestone() {
        lastEpoch = 0
        write(closedFormLRs(at: 0) ?? chainableLRs())
    }

    /// PyTorch's `get_lr()` at the current `last_epoch`, reading the groups' current LRs.
    func chainableLRs() -> [Double] { currentLRs }

    /// The closed form at `epoch`, relative to `baseLRs`, where PyTorch defines one (`_get_closed_form_lr`).
    public func closedFormLRs(at epoch: Int) -> [Double]? { nil }

    var currentLRs: [Double] { groups.map(\.lr) }

    func write(_ lrs: [Double]) {
        for (g, lr) in zip(groups, lrs) { g.lr = lr }
    }

    // MARK: description

    /// The canonical spec (parseable again, every default resolved).
    public var spec: String { kind }

    /// The schedule's natural length in steps, which `->` uses as the implicit switch step (nil: none).
    public var length: Int? { nil }

    public var statusText: String {
        if let length { return "\(kind) \(max(lastEpoch, 0))/\(length)" }
        return "\(kind) step \(max(lastEpoch, 0))"
    }

    // MARK: plan

    public func plan(count: Int) -> [[Double]]? {
        guard count > 0 else { return [] }
        let virtual = groups.map { ParamGroup(name: $0.name, params: [], lr: $0.lr, hyper: [:]) }
        let twin = makeTwin(on: virtual)
        try? twin.restore(stateSnapshot())
        for (v, g) in zip(virtual, groups) { v.lr = g.lr; v.initialLR = g.initialLR }
        var out: [[Double]] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            twin.step(metric: nil)
            out.append(virtual.map(\.lr))
        }
        return out
    }

    /// The same scheduler (same configuration) over other groups, for dry runs.
    func makeTwin(on groups: [ParamGroup]) -> SchedulerBase { fatalError("\(type(of: self)) must override makeTwin") }

    // MARK: state

    /// Kind-specific state beyond `last_epoch`, `_step_count` and `base_lrs`.
    func extraState(values: inout [String: Double], lists: inout [String: [Double]]) {}
    func restoreExtra(values: [String: Double], lists: [String: [Double]]) throws {}

    public func stateSnapshot() -> SchedulerState {
        var values: [String: Double] = ["last_epoch": Double(lastEpoch), "step_count": Double(stepCount)]
        var lists: [String: [Double]] = ["base_lrs": baseLRs]
        extraState(values: &values, lists: &lists)
        return SchedulerState(kind: kind, values: values, lists: lists, children: childStates())
    }

    func childStates() -> [SchedulerState] { [] }
    func restoreChildren(_ states: [SchedulerState]) throws {}

    public func restore(_ state: SchedulerState) throws {
        guard state.kind == kind else {
            throw OptimError("scheduler state is for '\(state.kind)', this scheduler is '\(kind)'")
        }
        if let b = state.lists["base_lrs"] {
            guard b.count == groups.count else {
                throw OptimError("scheduler state has \(b.count) param groups, the optimizer has \(groups.count)")
            }
            baseLRs = b
        }
        try restoreChildren(state.children)
        try restoreExtra(values: state.values, lists: state.lists)
        if let e = state.values["last_epoch"] { lastEpoch = Int(e) }
        if let s = state.values["step_count"] { stepCount = Int(s) }
    }
}

/// `constant` / `none`: a fixed LR. It never writes the groups' LRs, so manual changes simply stay.
/// (PyTorch's `ConstantLR`, a temporary factor, is `constantlr`.) Inside `->` it starts at the base LRs.
public final class ConstantSchedule: SchedulerBase, @unchecked Sendable {
    init(groups: [ParamGroup], baseLRs: [Double]) {
        super.init(kind: "constant", groups: groups, baseLRs: baseLRs)
        initialStep()
    }
    public override func closedFormLRs(at epoch: Int) -> [Double]? { baseLRs }
    override func makeTwin(on groups: [ParamGroup]) -> SchedulerBase { ConstantSchedule(groups: groups, baseLRs: baseLRs) }
    public override var statusText: String { "constant" }
}
