import ArgumentParser
import Foundation
import LRModels
import LRTrain

/// The options that define a run, shared by `train`, `find-lr` and `sweep`. Each option that sets a field of
/// `TrainConfig` has the field's name and type and takes its default from `TrainConfig()`, so the options decode as
/// the config (`config()`) with no copying field by field; an option without a field (`--threads`) is left out.
struct TrainOptions: ParsableArguments {
    private static let defaults = TrainConfig()

    @Option(parsing: .unconditional, help: "A name for the run: replay's legend, status rows and --summary show it instead of the run's folder.")
    var name: String?
    @Option(parsing: .unconditional, help: "Model: mlp or convnet. (default: \(defaults.model))", transform: { try ModelKind(name: $0) })
    var model = defaults.model
    @Option(parsing: .unconditional, help: "MLP hidden sizes, comma separated (784 → HIDDEN → 10).")
    var hidden = LayerSizes(defaults.hidden)
    @Option(parsing: .unconditional, help: "Dropout probability after each hidden layer of the MLP.")
    var dropout = defaults.dropout
    @Option(parsing: .unconditional, help: "Dataset: a folder of MNIST-format IDX files (raw or .gz), or synthetic:spirals. Default: Debian's Fashion-MNIST in /usr/share/datasets/fashion-mnist.")
    var data: String?
    @Flag(help: "Normalise pixels by the training set's mean and standard deviation.")
    var normalize = defaults.normalize
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Samples per micro-batch.")
    var batchSize = defaults.batchSize
    @Option(parsing: .unconditional, help: "Epochs to train.")
    var epochs = defaults.epochs
    @Option(name: .customLong("max-steps"), parsing: .unconditional, help: "Stop after this many optimizer steps.")
    var maxSteps: Int?
    @Option(parsing: .unconditional, help: "Random seed: same seed, same run, bit for bit.", transform: TrainOptions.seed)
    var seed = defaults.seed
    @Option(parsing: .unconditional, help: "Optimizer, optionally with hyperparameters: sgd, adamw, lamb:trust_clip=true ... (see docs/optimizers.md).")
    var optimizer = defaults.optimizer
    @Option(parsing: .unconditional, help: "Base learning rate.")
    var lr = defaults.lr
    @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "Weight decay (default: the optimizer's own).")
    var weightDecay: Double?
    @Option(parsing: .unconditional, help: "Momentum (SGD, RMSprop).")
    var momentum: Double?
    @Option(name: .customLong("group"), parsing: .unconditionalSingleValue, help: "A param-group rule, repeatable, first match wins: 'head.*:lr_scale=2', '*.bias,*bn*:weight_decay=0', 'fc1.*:lr=0' (freeze).")
    var groups = defaults.groups
    @Option(parsing: .unconditional, help: "LR scheduler spec: constant, step:step_size=1000, cosine, 'warmup:steps=500 -> cosine', plateau:patience=2 ... (default: warmup + cosine sized to the run: warmup over one epoch or a tenth of the run, whichever is shorter, then cosine to zero)")
    var scheduler: String?
    @Option(name: .customLong("scheduler-interval"), parsing: .unconditional, help: "Step the scheduler per optimizer step (step) or per epoch (epoch).")
    var schedulerInterval = defaults.schedulerInterval
    @Option(name: .customLong("plateau-metric"), parsing: .unconditional, help: "What ReduceLROnPlateau watches: val_loss, val_acc or train_loss.")
    var plateauMetric = defaults.plateauMetric
    @Option(name: .customLong("accum-steps"), parsing: .unconditional, help: "Micro-batches per optimizer step (gradient accumulation).")
    var accumSteps = defaults.accumSteps
    @Option(name: .customLong("clip-grad-norm"), parsing: .unconditional, help: "Clip the global gradient norm to this value.")
    var clipGradNorm: Double?
    @Option(name: .customLong("label-smoothing"), parsing: .unconditional, help: "Label smoothing of the cross-entropy loss.")
    var labelSmoothing = defaults.labelSmoothing
    @Option(name: .customLong("eval-every"), parsing: .unconditional, help: "Also evaluate every N optimizer steps (always at each epoch end).")
    var evalEvery: Int?
    @Option(name: .customLong("checkpoint-every"), parsing: .unconditional, help: "Checkpoint every N optimizer steps (0: only before risky commands and at the end).")
    var checkpointEvery = defaults.checkpointEvery
    @Option(name: .customLong("checkpoint-keep"), parsing: .unconditional, help: "Checkpoints kept in memory and (automatic ones) on disk.")
    var checkpointKeep = defaults.checkpointKeep
    @Option(name: .customLong("guard-factor"), parsing: .unconditional, help: "Divergence guard: trip when a loss exceeds this multiple of its best smoothed value (0: only NaN/inf).")
    var guardFactor = defaults.guardFactor
    @Option(name: .customLong("on-divergence"), parsing: .unconditional, help: "What the guard does: pause, rollback (to the last checkpoint, LR halved) or stop. Headless runs stop where a pause could never be resumed.")
    var guardAction = defaults.guardAction
    @Option(parsing: .unconditional, help: "BLAS threads (default: 2, which measured fastest here; see README).")
    var threads: Int?

    // Every option takes the next argument as its value even when it starts with '-' (`--lr -1`, `--scheduler
    // '-> cosine'`), so the message says what is wrong with the value instead of "Missing value".

    /// The run's config: every option as the `TrainConfig` field of its name, through the config's coded form
    /// (exact for every value: a 64-bit seed, an LR's shortest digits); then checked.
    func config() throws -> TrainConfig {
        let c: TrainConfig
        do { c = try JSONDecoder().decode(TrainConfig.self, from: JSONEncoder().encode(ParsedValues(of: self))) } catch {
            throw ValidationError("the options do not make a run config: \(error)")
        }
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

/// `--hidden 512,256`: the MLP's hidden layer sizes, coded as the list `TrainConfig.hidden` holds.
struct LayerSizes: ExpressibleByArgument, Encodable {
    var sizes: [Int]
    init(_ sizes: [Int]) { self.sizes = sizes }

    init?(argument: String) {
        let sizes = argument.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 != nil }) else { return nil }
        self.sizes = sizes.map { $0! }
    }

    var defaultValueDescription: String { sizes.map(String.init).joined(separator: ",") }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(sizes)
    }
}

/// The values of a command's options and flags by property name, coded as they are (the argument parser has
/// already made each one of its declared type).
struct ParsedValues: Encodable {
    private let values: [String: any Encodable]

    init(of arguments: some ParsableArguments) {
        var values: [String: any Encodable] = [:]
        for child in Mirror(reflecting: arguments).children {
            guard let label = child.label, let parsed = child.value as? any ParsedValue else { continue }
            values[label.hasPrefix("_") ? String(label.dropFirst()) : label] = parsed.value
        }
        self.values = values
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        for (key, value) in values { try c.encode(value, forKey: Key(stringValue: key)) }
    }
}

/// An option's or flag's parsed value, whatever its type.
protocol ParsedValue { var value: any Encodable { get } }
extension Option: ParsedValue where Value: Encodable { var value: any Encodable { wrappedValue } }
extension Flag: ParsedValue where Value: Encodable { var value: any Encodable { wrappedValue } }
