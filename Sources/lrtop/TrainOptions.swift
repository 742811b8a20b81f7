import ArgumentParser
import Foundation
import LRTrain

/// The options that define a run, shared by `train`, `bench` and `compare`.
struct TrainOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "A name for the run: replay's legend, status rows and --summary show it instead of the run's folder.")
    var name: String?
    @Option(parsing: .unconditional, help: "Model: mlp or convnet.")
    var model = "mlp"
    @Option(parsing: .unconditional, help: "MLP hidden sizes, comma separated (784 → HIDDEN → 10).")
    var hidden = "256"
    @Option(parsing: .unconditional, help: "Dropout probability after each hidden layer of the MLP.")
    var dropout = 0.0
    @Option(parsing: .unconditional, help: "Dataset: a folder of MNIST-format IDX files (raw or .gz), or synthetic:spirals. Default: Debian's Fashion-MNIST in /usr/share/datasets/fashion-mnist.")
    var data: String?
    @Flag(help: "Normalise pixels by the training set's mean and standard deviation.")
    var normalize = false
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Samples per micro-batch.")
    var batchSize = 128
    @Option(parsing: .unconditional, help: "Epochs to train.")
    var epochs = 5
    @Option(name: .customLong("max-steps"), parsing: .unconditional, help: "Stop after this many optimizer steps.")
    var maxSteps: Int?
    @Option(parsing: .unconditional, help: "Random seed: same seed, same run, bit for bit.", transform: TrainOptions.seed)
    var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Optimizer, optionally with hyperparameters: sgd, adamw, lamb:trust_clip=true ... (see docs/optimizers.md).")
    var optimizer = "adamw"
    @Option(parsing: .unconditional, help: "Base learning rate.")
    var lr = 1e-3
    @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "Weight decay (default: the optimizer's own).")
    var weightDecay: Double?
    @Option(parsing: .unconditional, help: "Momentum (SGD, RMSprop).")
    var momentum: Double?
    @Option(name: .customLong("group"), parsing: .unconditionalSingleValue, help: "A param-group rule, repeatable, first match wins: 'head.*:lr_scale=2', '*.bias,*bn*:weight_decay=0', 'fc1.*:lr=0' (freeze).")
    var groups: [String] = []
    @Option(parsing: .unconditional, help: "LR scheduler spec: constant, step:step_size=1000, cosine, 'warmup:steps=500 -> cosine', plateau:patience=2 ... (default: warmup + cosine sized to the run: warmup over one epoch or a tenth of the run, whichever is shorter, then cosine to zero)")
    var scheduler: String?
    @Option(name: .customLong("scheduler-interval"), parsing: .unconditional, help: "Step the scheduler per optimizer step (step) or per epoch (epoch).")
    var schedulerInterval = SchedulerInterval.step
    @Option(name: .customLong("plateau-metric"), parsing: .unconditional, help: "What ReduceLROnPlateau watches: val_loss, val_acc or train_loss.")
    var plateauMetric = PlateauMetric.valLoss
    @Option(name: .customLong("accum-steps"), parsing: .unconditional, help: "Micro-batches per optimizer step (gradient accumulation).")
    var accumSteps = 1
    @Option(name: .customLong("clip-grad-norm"), parsing: .unconditional, help: "Clip the global gradient norm to this value.")
    var clipGradNorm: Double?
    @Option(name: .customLong("label-smoothing"), parsing: .unconditional, help: "Label smoothing of the cross-entropy loss.")
    var labelSmoothing = 0.0
    @Option(name: .customLong("eval-every"), parsing: .unconditional, help: "Also evaluate every N optimizer steps (always at each epoch end).")
    var evalEvery: Int?
    @Option(name: .customLong("checkpoint-every"), parsing: .unconditional, help: "Checkpoint every N optimizer steps (0: only before risky commands and at the end).")
    var checkpointEvery = 0
    @Option(name: .customLong("checkpoint-keep"), parsing: .unconditional, help: "Checkpoints kept in memory and (automatic ones) on disk.")
    var checkpointKeep = 5
    @Option(name: .customLong("guard-factor"), parsing: .unconditional, help: "Divergence guard: trip when a loss exceeds this multiple of its best smoothed value (0: only NaN/inf).")
    var guardFactor = 10.0
    @Option(name: .customLong("on-divergence"), parsing: .unconditional, help: "What the guard does: pause, rollback (to the last checkpoint, LR halved) or stop. Headless runs stop where a pause could never be resumed.")
    var onDivergence = GuardAction.pause
    @Option(parsing: .unconditional, help: "BLAS threads (default: 2, which measured fastest here; see README).")
    var threads: Int?

    // Every option takes the next argument as its value even when it starts with '-' (`--lr -1`, `--scheduler
    // '-> cosine'`), so the message says what is wrong with the value instead of "Missing value".

    /// The scheduler used when none is given: the interactive session shows warmup + cosine.
    func config(defaultScheduler: String) throws -> TrainConfig {
        var c = TrainConfig()
        c.name = name
        c.model = model
        let sizes = hidden.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 != nil }) else {
            throw ValidationError("invalid --hidden '\(hidden)': expected sizes like 256 or 512,256")
        }
        c.hidden = sizes.map { $0! }
        c.dropout = dropout
        c.data = data
        c.normalize = normalize
        c.batchSize = batchSize
        c.epochs = epochs
        c.maxSteps = maxSteps
        c.seed = seed
        c.optimizer = optimizer
        c.lr = lr
        c.weightDecay = weightDecay
        c.momentum = momentum
        c.groups = groups
        c.scheduler = scheduler ?? defaultScheduler
        c.schedulerInterval = schedulerInterval
        c.plateauMetric = plateauMetric
        c.accumSteps = accumSteps
        c.clipGradNorm = clipGradNorm
        c.labelSmoothing = labelSmoothing
        c.evalEvery = evalEvery
        c.checkpointEvery = checkpointEvery
        c.checkpointKeep = checkpointKeep
        c.guardFactor = guardFactor
        c.guardAction = onDivergence
        do { try c.validate() } catch { throw ValidationError(error.description) }
        return c
    }

    /// A seed is a whole number from 0 to 2^64-1; the parser's own message for `-1` only says it is invalid.
    static func seed(_ text: String) throws -> UInt64 {
        guard let v = UInt64(text) else {
            throw ValidationError("invalid --seed '\(text)': a seed is a whole number from 0 to \(UInt64.max), e.g. --seed 1")
        }
        return v
    }

    var blasThreads: Int { threads ?? TrainOptions.defaultThreads(batchSize: batchSize) }

    /// Measured with `lrtop bench --sweep-threads` (README): two threads win even for a batch of 128 here.
    static func defaultThreads(batchSize: Int) -> Int { min(2, ProcessInfo.processInfo.activeProcessorCount) }
}
