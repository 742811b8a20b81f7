/// Which imported series plays which part of a run: the training loss, the LR of each group, the
/// evaluation metrics. `guess(tags:)` picks by name; the user can override any field (`--loss-tag`).
public struct TagMapping: Sendable, Equatable {
    public var loss: String?
    /// One tag per param group, in group order.
    public var lrs: [String]
    public var gradNorm: String?
    public var samplesPerSec: String?
    public var evalLoss: String?
    public var evalAccuracy: String?
    public var epoch: String?
    /// A series of seconds since the start (a CSV `wall_time` column). Without one, wall time comes from
    /// the series' own timestamps (TensorBoard).
    public var wallTime: String?

    public init(loss: String? = nil, lrs: [String] = [], gradNorm: String? = nil, samplesPerSec: String? = nil,
                evalLoss: String? = nil, evalAccuracy: String? = nil, epoch: String? = nil, wallTime: String? = nil) {
        self.loss = loss; self.lrs = lrs; self.gradNorm = gradNorm; self.samplesPerSec = samplesPerSec
        self.evalLoss = evalLoss; self.evalAccuracy = evalAccuracy; self.epoch = epoch; self.wallTime = wallTime
    }

    /// Every tag the mapping uses.
    public var usedTags: [String] {
        [loss].compactMap { $0 } + lrs + [gradNorm, samplesPerSec, evalLoss, evalAccuracy, epoch, wallTime].compactMap { $0 }
    }

    /// Lower case, with `/`, `-`, `.` and spaces as `_`: "train/loss" and "train-loss" both read "train_loss".
    public static func normalized(_ tag: String) -> String {
        String(tag.lowercased().map { "/-. ".contains($0) ? "_" : $0 })
    }

    // Names in order of preference, normalized.
    static let lossNames = ["loss", "train_loss", "training_loss", "train_loss_step", "loss_train", "train_batch_loss",
                            "train_loss_epoch", "loss_step"]
    static let gradNormNames = ["grad_norm", "train_grad_norm", "gradient_norm", "train_gradient_norm", "grad_norm_total"]
    static let samplesPerSecNames = ["samples_per_sec", "train_samples_per_sec", "samples_per_second",
                                     "train_samples_per_second", "throughput"]
    static let evalLossNames = ["val_loss", "val_loss_epoch", "validation_loss", "valid_loss", "eval_loss", "loss_val",
                                "val_loss_step", "test_loss"]
    static let evalAccuracyNames = ["val_acc", "val_accuracy", "val_acc_epoch", "validation_accuracy", "validation_acc",
                                    "valid_acc", "eval_acc", "eval_accuracy", "acc_val", "accuracy", "acc", "test_acc",
                                    "test_accuracy"]
    static let lrNames = ["lr", "learning_rate", "train_lr", "train_learning_rate", "lr_train", "optimizer_lr"]

    /// Whether a tag names a learning rate: `lr`, `train/lr`, `learning_rate`, `lr-AdamW`, `lr-AdamW/pg1`,
    /// `train/lr/<group>` ...
    public static func isLRTag(_ tag: String) -> Bool {
        let n = normalized(tag)
        return lrNames.contains(n) || lrNames.contains { n.hasPrefix($0 + "_") }
    }

    /// The group name an LR tag stands for: `train/lr/decay` -> "decay", `lr-AdamW` -> "AdamW", `lr` -> "lr".
    public static func groupName(forLRTag tag: String) -> String {
        let lower = tag.lowercased()
        for prefix in ["train/learning_rate", "train/lr", "learning_rate", "train_lr", "lr"] where lower.hasPrefix(prefix) {
            var rest = tag.dropFirst(prefix.count)
            if let first = rest.first, "/-_. ".contains(first) { rest = rest.dropFirst() }
            return rest.isEmpty ? "lr" : String(rest)
        }
        return tag
    }

    /// Guesses the mapping from tag names (in file order). LR: when both `train/lr` and per-group tags
    /// `train/lr/<group>` exist, the per-group tags are the groups.
    public static func guess(tags: [String]) -> TagMapping {
        let normalized = tags.map(Self.normalized)
        func first(_ names: [String]) -> String? {
            for name in names { if let i = normalized.firstIndex(of: name) { return tags[i] } }
            return nil
        }
        // `lrtop export`'s own tags first: beside them a metric of the run may be named `loss` or `acc`.
        func exported(_ tag: String, else names: [String]) -> String? { tags.contains(tag) ? tag : first(names) }
        var m = TagMapping()
        m.loss = exported("train/loss", else: lossNames)
        m.gradNorm = exported("train/grad_norm", else: gradNormNames)
        m.samplesPerSec = exported("train/samples_per_sec", else: samplesPerSecNames)
        m.evalLoss = exported("val/loss", else: evalLossNames)
        m.evalAccuracy = exported("val/acc", else: evalAccuracyNames)
        m.epoch = first(["epoch"])
        m.wallTime = first(["wall_time", "train_wall_time", "time", "elapsed"])
        var lrTags = tags.filter(isLRTag)
        // Drop a tag whose per-group refinements are present ("train/lr" beside "train/lr/decay").
        lrTags = lrTags.filter { t in !lrTags.contains { $0.count > t.count && $0.hasPrefix(t) && "/-_.".contains($0[$0.index($0.startIndex, offsetBy: t.count)]) } }
        m.lrs = lrTags
        return m
    }
}
