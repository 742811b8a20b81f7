import Foundation
import LRModels

/// Everything that defines a run. Saved in the run log's header and in every checkpoint, so a run can be
/// reproduced or resumed from its files alone.
public struct TrainConfig: Codable, Sendable, Equatable {
    // Model
    /// A name for the run, shown instead of its folder in replay legends, status rows and `replay --summary`.
    public var name: String? = nil
    public var model = ModelKind.mlp
    /// Hidden layer sizes of the MLP (784 → 256 → 10 by default, the guide's and the PyTorch reference's network).
    public var hidden = [256]
    public var dropout = 0.0

    // Data
    /// A folder of MNIST-format IDX files, `synthetic:spirals`, or nil for Debian's Fashion-MNIST.
    public var data: String? = nil
    /// Normalise pixels by the training set's mean and std after scaling to [0, 1].
    public var normalize = false
    public var batchSize = 128
    public var epochs = 5
    /// Stop after this many optimizer steps even if epochs remain.
    public var maxSteps: Int? = nil
    public var seed: UInt64 = 0

    // Optimisation
    /// An optimizer spec: a name (`adamw`) with optional hyperparameters (`adamw:betas=0.9/0.95`).
    public var optimizer = "adamw"
    public var lr = 1e-3
    /// Overrides the optimizer's default weight decay when set.
    public var weightDecay: Double? = nil
    public var momentum: Double? = nil
    /// Param-group rules, first match wins (`head.*:lr_scale=2`, `*.bias:weight_decay=0`).
    public var groups: [String] = []
    /// A scheduler spec (`constant`, `cosine:T_max=2000`, `warmup:steps=500 -> cosine`); nil: the guide's warmup +
    /// cosine, sized when the run's length is known (`schedule(totalSteps:stepsPerEpoch:)`).
    public var scheduler: String? = nil
    /// Step the scheduler after every optimizer step (`step`) or after every epoch (`epoch`).
    public var schedulerInterval = SchedulerInterval.step
    /// What ReduceLROnPlateau watches: `val_loss`, `val_acc` or `train_loss`.
    public var plateauMetric = PlateauMetric.valLoss
    /// Micro-batches whose gradients are summed before one optimizer step.
    public var accumSteps = 1
    /// Clip the global gradient norm to this value when set.
    public var clipGradNorm: Double? = nil
    public var labelSmoothing = 0.0

    // Evaluation and safety
    /// Evaluate every N optimizer steps as well as at every epoch end.
    public var evalEvery: Int? = nil
    /// Checkpoint every N optimizer steps (0: only before risky commands and at the end).
    public var checkpointEvery = 0
    /// Checkpoints kept in memory (and automatic ones on disk).
    public var checkpointKeep = 5
    /// The divergence guard trips when a step's loss exceeds this multiple of the best smoothed loss (0: off).
    public var guardFactor = 10.0
    /// What the guard does: `pause`, `rollback` (to the last checkpoint, LR halved) or `stop`.
    public var guardAction = GuardAction.pause

    public init() {}

    /// The schedule of a run of `totalSteps`: the spec given, else the guide's default.
    public func schedule(totalSteps: Int, stepsPerEpoch: Int) -> String {
        scheduler ?? Self.defaultSchedule(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch)
    }

    /// The guide's warmup + cosine: linear warmup over one epoch or a tenth of the run, whichever is shorter, then
    /// cosine annealing to zero over the rest.
    public static func defaultSchedule(totalSteps: Int, stepsPerEpoch: Int) -> String {
        let warm = max(1, min(stepsPerEpoch, totalSteps / 10))
        return totalSteps > warm ? "warmup:steps=\(warm) -> cosine" : "warmup:steps=\(warm)"
    }

    /// The config flattened to strings, for the run log's header.
    public var flattened: [String: String] {
        var out: [String: String] = [
            "model": model.rawValue, "hidden": hidden.map(String.init).joined(separator: ","), "dropout": "\(dropout)",
            "data": data ?? "default", "normalize": "\(normalize)", "batch_size": "\(batchSize)",
            "epochs": "\(epochs)", "seed": "\(seed)", "optimizer": optimizer, "lr": "\(lr)",
            "scheduler": scheduler ?? "default", "scheduler_interval": schedulerInterval.rawValue, "plateau_metric": plateauMetric.rawValue,
            "accum_steps": "\(accumSteps)", "label_smoothing": "\(labelSmoothing)",
            "checkpoint_every": "\(checkpointEvery)", "checkpoint_keep": "\(checkpointKeep)", "guard_factor": "\(guardFactor)",
            "guard_action": guardAction.rawValue,
        ]
        if let v = name, !v.isEmpty { out["name"] = v }
        if let v = maxSteps { out["max_steps"] = "\(v)" }
        if let v = weightDecay { out["weight_decay"] = "\(v)" }
        if let v = momentum { out["momentum"] = "\(v)" }
        if let v = clipGradNorm { out["clip_grad_norm"] = "\(v)" }
        if let v = evalEvery { out["eval_every"] = "\(v)" }
        if !groups.isEmpty { out["groups"] = groups.joined(separator: " ; ") }
        return out
    }

    /// What `--resume` lets the command line change: the step limit, the hosting of the run (evaluation,
    /// checkpoints, the guard) and the LR, which applies as an override event at the resumed step. Everything else
    /// defines the run's arithmetic (model, data, optimizer, schedule) and comes from the checkpoint.
    public static let resumableKeys: Set<String> = [
        "name", "epochs", "max_steps", "lr", "eval_every", "checkpoint_every", "checkpoint_keep", "guard_factor", "guard_action",
    ]

    /// The config a resumed run uses: the checkpoint's, with the `changed` keys (flattened names, those given on
    /// the command line) taken from `given`. A change to a key outside `resumableKeys` is refused, naming it.
    /// The LR is not changed here: the trainer applies it as an override event (`Trainer.resumeLR`).
    public static func resumed(saved: TrainConfig, given: TrainConfig, changed: Set<String>) throws(TrainError) -> TrainConfig {
        let was = saved.flattened, now = given.flattened
        let refused = changed.subtracting(resumableKeys).sorted().filter { was[$0] != now[$0] }
        if !refused.isEmpty {
            let list = refused.map { "--\(cliName($0)) \(now[$0] ?? "(none)") (the checkpoint has \(was[$0] ?? "none"))" }
            throw TrainError("a resumed run keeps its model, data, optimizer and schedule, so \(list.joined(separator: ", ")) "
                + "cannot apply: drop \(refused.count == 1 ? "it" : "them") to resume, change the schedule with a "
                + "--commands line '@STEP sched SPEC', or start a new run from these weights with --init")
        }
        var c = saved
        if changed.contains("name") { c.name = given.name }
        if changed.contains("epochs") { c.epochs = given.epochs }
        if changed.contains("max_steps") { c.maxSteps = given.maxSteps }
        if changed.contains("eval_every") { c.evalEvery = given.evalEvery }
        if changed.contains("checkpoint_every") { c.checkpointEvery = given.checkpointEvery }
        if changed.contains("checkpoint_keep") { c.checkpointKeep = given.checkpointKeep }
        if changed.contains("guard_factor") { c.guardFactor = given.guardFactor }
        if changed.contains("guard_action") { c.guardAction = given.guardAction }
        return c
    }

    /// The command-line option of a flattened key: `batch_size` → `batch-size`.
    public static func cliName(_ key: String) -> String {
        switch key {
        case "groups": "group"
        case "guard_action": "on-divergence"
        default: key.replacingOccurrences(of: "_", with: "-")
        }
    }

    /// The flattened key of a command-line option, or nil for options that do not belong to the config.
    public static func configKey(cliName name: String) -> String? {
        let key: String
        switch name {
        case "group": key = "groups"
        case "on-divergence": key = "guard_action"
        default: key = name.replacingOccurrences(of: "-", with: "_")
        }
        return TrainConfig().flattenedKeys.contains(key) ? key : nil
    }

    /// Every key `flattened` can hold.
    var flattenedKeys: Set<String> {
        Set(flattened.keys).union(["max_steps", "weight_decay", "momentum", "clip_grad_norm", "eval_every", "groups"])
    }

    /// Checks values a typo could break, with a message that names the option.
    public func validate() throws(TrainError) {
        func fail(_ s: String) throws(TrainError) { throw TrainError(s) }
        if !(lr.isFinite && lr >= 0) { try fail("invalid --lr \(lr): must be a finite number >= 0") }
        if batchSize < 1 { try fail("invalid --batch-size \(batchSize): must be at least 1") }
        if epochs < 0 || (epochs < 1 && maxSteps == nil) {
            try fail("invalid --epochs \(epochs): must be at least 1 (or 0 with --max-steps for no epoch limit)")
        }
        if let m = maxSteps, m < 1 { try fail("invalid --max-steps \(m): must be at least 1") }
        if accumSteps < 1 { try fail("invalid --accum-steps \(accumSteps): must be at least 1") }
        if let c = clipGradNorm, !(c > 0 && c.isFinite) { try fail("invalid --clip-grad-norm \(c): must be > 0") }
        if !(0..<1).contains(labelSmoothing) { try fail("invalid --label-smoothing \(labelSmoothing): must be in [0, 1)") }
        if !(0..<1).contains(dropout) { try fail("invalid --dropout \(dropout): must be in [0, 1)") }
        if hidden.contains(where: { $0 < 1 }) { try fail("invalid --hidden: sizes must be positive") }
        if guardFactor < 0 || !guardFactor.isFinite { try fail("invalid --guard-factor \(guardFactor): must be >= 0") }
        if checkpointEvery < 0 { try fail("invalid --checkpoint-every \(checkpointEvery): must be >= 0") }
        if checkpointKeep < 1 { try fail("invalid --checkpoint-keep \(checkpointKeep): must be at least 1") }
        if let e = evalEvery, e < 1 { try fail("invalid --eval-every \(e): must be at least 1") }
    }
}

public struct TrainError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
