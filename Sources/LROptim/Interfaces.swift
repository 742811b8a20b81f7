import LRTensor

// The contract between the optimizers/schedulers and the trainer. The trainer only talks to these protocols.

/// A set of parameters sharing hyperparameters. The LR in force lives here and only here: schedulers and manual
/// overrides write `lr`; the optimizer reads it at every step (PyTorch's `param_groups[i]["lr"]`).
public final class ParamGroup: @unchecked Sendable {
    /// A short label for the CLI, the UI and the log: "default", "head", "no_decay".
    public let name: String
    public let params: [Parameter]
    /// The LR in force for the next optimizer step.
    public var lr: Double
    /// The LR the group was created with (PyTorch's `initial_lr`); `lr reset` returns here.
    public var initialLR: Double
    /// Every other hyperparameter under PyTorch's names (`weight_decay`, `momentum`, `betas` as `beta1`/`beta2`...).
    /// Booleans are 1/0; an optional number set to `none` (LAMB's `max_grad_norm`) is 0. The optimizers fill in
    /// every key at construction (see `OptimizerDescriptor.defaultHyper`).
    public var hyper: [String: Double]

    public init(name: String, params: [Parameter], lr: Double, hyper: [String: Double] = [:]) {
        self.name = name; self.params = params; self.lr = lr; self.initialLR = lr; self.hyper = hyper
    }
}

/// An optimizer: reads each parameter's `grad`, updates its `value` in place.
public protocol Optimizer: AnyObject {
    /// The name as the CLI knows it: "sgd", "adamw", "lamb" ...
    var name: String { get }
    var groups: [ParamGroup] { get }
    /// One update of every parameter from its current gradient and its group's current `lr`.
    func step()
    /// Everything needed to continue bit-exactly after a restore (moments, step counts), keyed by parameter name.
    func stateSnapshot() -> OptimizerState
    func restore(_ state: OptimizerState) throws
    /// A one-line summary of the hyperparameters for the status panel: "adamw β=(0.9,0.999) eps=1e-08 wd=0.01".
    var summary: String { get }
}

/// Optimizer state as plain values, for checkpoints.
public struct OptimizerState: Codable, Sendable, Equatable {
    /// Per parameter name, per state slot ("exp_avg", "exp_avg_sq", "momentum_buffer" ...): the flattened values.
    public var tensors: [String: [String: [Float]]]
    /// Per parameter name, per scalar slot ("step" ...).
    public var scalars: [String: [String: Double]]
    /// Group LRs and hyperparameters at the time of the snapshot, in group order.
    public var groupLRs: [Double]
    public var groupInitialLRs: [Double]
    public var groupHypers: [[String: Double]]
    public init(tensors: [String: [String: [Float]]] = [:], scalars: [String: [String: Double]] = [:],
                groupLRs: [Double] = [], groupInitialLRs: [Double] = [], groupHypers: [[String: Double]] = []) {
        self.tensors = tensors; self.scalars = scalars; self.groupLRs = groupLRs
        self.groupInitialLRs = groupInitialLRs; self.groupHypers = groupHypers
    }
}

/// An LR scheduler over an optimizer's groups.
public protocol LRScheduler: AnyObject {
    /// The spec it was made from, in the shared text syntax (`cosine:T_max=90,eta_min=0`).
    var spec: String { get }
    /// Advances one step (one optimizer step or one epoch, as configured by the caller) and writes the new LR into
    /// each group. `metric` is used by ReduceLROnPlateau only (it ignores a step without one).
    func step(metric: Double?)
    /// The LR per group for the next `count` steps if nothing intervenes, or nil where the kind cannot know
    /// (ReduceLROnPlateau). `result[k][g]`: LR of group g after k+1 more steps.
    func plan(count: Int) -> [[Double]]?
    /// A one-line state for the status panel: "cosine 1200/5000", "plateau best=0.412 patience 1/3".
    var statusText: String { get }
    /// Whether it learns from a metric (ReduceLROnPlateau, or a sequence holding one): the trainer steps it at
    /// evaluations with the watched metric instead of after every step.
    var needsMetric: Bool { get }
    /// Its kind when it computes the LR from its own step count and anchors (OneCycleLR, CyclicLR,
    /// CosineAnnealingWarmRestarts, or a sequence in one of them now): a manual LR would last until its next step.
    /// nil for the chainable kinds, which go on from whatever LR they find.
    var absoluteKind: String? { get }
    /// The ramp it is in (`warmup` or `linear` still raising the LR, its kind and the steps until it stops), or nil.
    /// A manual LR during a ramp would be raised with it (chainable) and, inside a `->` sequence, replaced by the
    /// next part's base LR at its milestone: the trainer refuses it unless the group is held.
    var ramp: (kind: String, stepsLeft: Int)? { get }
    func stateSnapshot() -> SchedulerState
    func restore(_ state: SchedulerState) throws
}

/// Scheduler state as plain values, for checkpoints (nested for SequentialLR).
public struct SchedulerState: Codable, Sendable, Equatable {
    public var kind: String
    public var values: [String: Double]
    public var lists: [String: [Double]]
    public var children: [SchedulerState]
    public init(kind: String, values: [String: Double] = [:], lists: [String: [Double]] = [:],
                children: [SchedulerState] = []) {
        self.kind = kind; self.values = values; self.lists = lists; self.children = children
    }
}
