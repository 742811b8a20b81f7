// The records of a run: what the trainer emits, what the JSONL run log stores, what replay and the UI read.
// Live training and replay share these types, so the UI draws both the same way.
// The `CodingKeys` are the run log's snake_case keys (docs/runlog.md): `JSONEncoder` output of a record is
// its log line without the "type" key. NaN and infinities are the strings "NaN", "Infinity", "-Infinity"
// in the log (use `.convertToString`/`.convertFromString` strategies with Foundation's coders).

import LRCommand

/// The first line of a run log.
public struct RunHeader: Codable, Sendable, Equatable {
    /// 2: events carry the parsed command (`command`) and typed outcomes (`result`); see docs/runlog.md.
    public static let currentSchema = 2
    /// Schema version of the log format (see docs/runlog.md).
    public var schema: Int
    public var lrtopVersion: String
    /// The run's configuration as the user gave it, flattened to strings ("optimizer": "adamw", "lr": "0.001").
    public var config: [String: String]
    public var seed: UInt64
    /// ISO 8601, UTC.
    public var startTime: String
    /// Names of the param groups, in the order of `lrs` arrays everywhere.
    public var groups: [String]
    public var stepsPerEpoch: Int
    /// Planned optimizer steps for the whole run, when known.
    public var totalSteps: Int?
    /// Set when this log is a sub-run of another run (an LR range test, a branch, a sweep trial); nil for a run.
    public var subrun: SubRun?
    /// How the script that wrote the log numbers its epochs (0 or 1), when a bridged run knew it at attach; nil for
    /// lrtop's own runs (shown from 1). Records' `epoch` is 0-based either way.
    public var epochBase: Int? = nil
    /// The control socket of the process that writes the log (a bridged run, `lrtop train`): `lrtop attach RUN_DIR`
    /// connects to it. Nil when the run serves none.
    public var socket: String? = nil

    public init(schema: Int = RunHeader.currentSchema, lrtopVersion: String, config: [String: String], seed: UInt64,
                startTime: String, groups: [String], stepsPerEpoch: Int, totalSteps: Int?, subrun: SubRun? = nil) {
        self.schema = schema; self.lrtopVersion = lrtopVersion; self.config = config; self.seed = seed
        self.startTime = startTime; self.groups = groups; self.stepsPerEpoch = stepsPerEpoch; self.totalSteps = totalSteps
        self.subrun = subrun
    }

    /// The run log's keys (docs/runlog.md), also used by `Codable`.
    public enum CodingKeys: String, CodingKey {
        case schema, lrtopVersion = "lrtop_version", config, seed, startTime = "start_time", groups
        case stepsPerEpoch = "steps_per_epoch", totalSteps = "total_steps", subrun, epochBase = "epoch_base", socket
    }
}

/// What makes a log a sub-run: a piece of training started from another run's state that is not the run itself.
/// Sub-runs live in `RUN_DIR/subruns/NAME/log.jsonl` (sweep trials in `SWEEP_DIR/trials/NAME/log.jsonl`), so a
/// reader of the run finds them beside its log, and `lrtop replay` can draw them over it.
public struct SubRun: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// An LR range test (`find-lr`): the LR grows each step; the parent's state is restored afterwards.
        case findLR = "find-lr"
        /// A "what if" branch (`fork`), trained from the parent's state at `fromStep`.
        case branch
        /// One configuration of `lrtop sweep`.
        case trial
    }
    public var kind: Kind
    /// A short name a person reads in legends and tables ("lr=1e-3", "b2", "t07").
    public var label: String
    /// The parent's step boundary it started from (the parent had taken this many steps); nil for sweep trials.
    public var fromStep: Int?
    /// The parent's log, relative to this log's folder (e.g. "../../log.jsonl"); nil when there is none.
    public var parent: String?

    public init(kind: Kind, label: String, fromStep: Int? = nil, parent: String? = nil) {
        self.kind = kind; self.label = label; self.fromStep = fromStep; self.parent = parent
    }

    public enum CodingKeys: String, CodingKey {
        case kind, label, fromStep = "from_step", parent
    }
}

/// One of a run's own scalars in a record: a numeric key beyond the record's built-in ones (`run.step(acc=0.7)`'s
/// `acc`), or a member of its `metrics` object (docs/runlog.md, "Metrics"). NaN and infinities are values like any other.
public struct MetricValue: Sendable, Equatable {
    public var name: String
    public var value: Double

    public init(_ name: String, _ value: Double) { self.name = name; self.value = value }
}

extension Array where Element == MetricValue {
    /// The value of the metric `name` in this record, or nil.
    public subscript(metric name: String) -> Double? { first { $0.name == name }?.value }
}

/// One optimizer step.
public struct StepRecord: Codable, Sendable, Equatable {
    /// 1-based count of optimizer steps taken so far.
    public var step: Int
    /// 0-based epoch the step belongs to.
    public var epoch: Int
    /// The LR each group used for this step.
    public var lrs: [Double]
    /// Training loss of the step's batch (mean over accumulated micro-batches).
    public var loss: Double
    /// Global gradient L2 norm before clipping.
    public var gradNorm: Double
    public var samplesPerSec: Double
    /// Seconds since the run started.
    public var wallTime: Double
    /// The step's other scalars, in the order of the line (the trainer's batch accuracy, the bridge's
    /// `run.step(**metrics)`).
    public var metrics: [MetricValue]

    public init(step: Int, epoch: Int, lrs: [Double], loss: Double, gradNorm: Double, samplesPerSec: Double,
                wallTime: Double, metrics: [MetricValue] = []) {
        self.step = step; self.epoch = epoch; self.lrs = lrs; self.loss = loss; self.gradNorm = gradNorm
        self.samplesPerSec = samplesPerSec; self.wallTime = wallTime; self.metrics = metrics
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case step, epoch, lrs, loss, gradNorm = "grad_norm", samplesPerSec = "samples_per_sec", wallTime = "wall_time"
    }
}

/// An evaluation on the held-out split.
public struct EvalRecord: Codable, Sendable, Equatable {
    public var step: Int
    public var epoch: Int
    public var loss: Double
    /// Top-1 accuracy in [0, 1].
    public var accuracy: Double
    public var wallTime: Double
    /// The evaluation's other scalars (`run.eval(val_f1=...)`, HF's `eval_*` keys), in the order of the line.
    public var metrics: [MetricValue]

    public init(step: Int, epoch: Int, loss: Double, accuracy: Double, wallTime: Double, metrics: [MetricValue] = []) {
        self.step = step; self.epoch = epoch; self.loss = loss; self.accuracy = accuracy; self.wallTime = wallTime
        self.metrics = metrics
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case step, epoch, loss, accuracy, wallTime = "wall_time"
    }
}

/// Scalars logged on their own, at any cadence (the bridge's `run.log(dict)`): not an optimizer step, so they add no
/// row to the run's steps. `step` is the step boundary they belong to (the optimizer steps taken so far).
public struct MetricsRecord: Codable, Sendable, Equatable {
    public var step: Int
    /// Seconds since the run started.
    public var wallTime: Double
    public var metrics: [MetricValue]

    public init(step: Int, wallTime: Double, metrics: [MetricValue]) {
        self.step = step; self.wallTime = wallTime; self.metrics = metrics
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case step, wallTime = "wall_time"
    }
}

/// Something that happened to the run: an intervention, a rejected command, a guard trip, a checkpoint.
public struct EventRecord: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A command that applied (`lr 3e-4`, `sched cosine`, `pause` ...).
        case command
        /// A command that could not apply; nothing changed.
        case error
        /// The divergence guard tripped.
        case guardTrip = "guard"
        case checkpoint
        case rollback
        /// Informational notes (dataset fallback, resume point ...).
        case info
    }
    /// The step boundary it happened at: the number of optimizer steps taken before it.
    public var step: Int
    public var kind: Kind
    /// The command text as typed, or a short label ("auto-checkpoint").
    public var text: String
    /// The command as parsed, on `command` and `error` events a command caused (nil for one that did not parse,
    /// and for the run's own events). Readers of older logs get it from `text` (`RunLogLine`).
    public var command: Command?
    /// What the event did that a reader needs as data (where it rolled back to, the sub-runs it made ...).
    public var result: EventResult?
    /// LR per group just before and just after (equal when nothing changed).
    public var lrsBefore: [Double]
    public var lrsAfter: [Double]
    /// A message a person can act on (errors, guard reasons), or details.
    public var message: String?
    public var wallTime: Double

    public init(step: Int, kind: Kind, text: String, command: Command? = nil, result: EventResult? = nil,
                lrsBefore: [Double], lrsAfter: [Double], message: String? = nil, wallTime: Double) {
        self.step = step; self.kind = kind; self.text = text; self.command = command; self.result = result
        self.lrsBefore = lrsBefore; self.lrsAfter = lrsAfter; self.message = message; self.wallTime = wallTime
    }

    public enum CodingKeys: String, CodingKey {
        case step, kind, text, command, result, lrsBefore = "lrs_before", lrsAfter = "lrs_after", message
        case wallTime = "wall_time"
    }
}

/// The outcome of an event as data, so that readers never take it from the message's English (docs/runlog.md,
/// `result`). Every field is optional: an event carries the ones that apply.
public struct EventResult: Codable, Sendable, Equatable {
    /// A find-lr suggestion: fastai's `valley`, `steep`, `min/10`, `slide`, or Lightning's `lightning`.
    public struct Suggestion: Codable, Sendable, Equatable {
        public var name: String
        public var lr: Double
        public init(name: String, lr: Double) { self.name = name; self.lr = lr }
    }
    /// The step the run was put back to: `rollback`, a guard trip that rolled back.
    public var rolledBackTo: Int?
    /// The guard paused the run (a person resumes it).
    public var paused: Bool?
    /// The scheduler in force after the event, as built (`sched`: its lengths filled in, canonical spelling).
    public var scheduler: String?
    /// Sub-run folders the event made, relative to the log's folder: find-lr's sweep, a fork's branches in order.
    public var subruns: [String]?
    /// find-lr's suggestions, in the order the summary lists them.
    public var suggestions: [Suggestion]?
    /// An `info` event of a bridged run: how its script numbers epochs (0 or 1), detected from its first step.
    public var epochBase: Int?

    public init(rolledBackTo: Int? = nil, paused: Bool? = nil, scheduler: String? = nil, subruns: [String]? = nil,
                suggestions: [Suggestion]? = nil) {
        self.rolledBackTo = rolledBackTo; self.paused = paused; self.scheduler = scheduler; self.subruns = subruns
        self.suggestions = suggestions
    }

    public enum CodingKeys: String, CodingKey {
        case rolledBackTo = "rolled_back_to", paused, scheduler, subruns, suggestions, epochBase = "epoch_base"
    }
}

/// How a run ended: the `reason` of its end record (the raw values are the log's strings).
public enum EndReason: String, Codable, Sendable, CaseIterable {
    /// Every planned step was taken.
    case completed
    /// A person or a command stopped it before the end.
    case stopped
    /// A signal (Ctrl-C, SIGTERM) ended it.
    case interrupted
    /// The divergence guard stopped it (loss NaN/inf or exploded, `--on-divergence stop`).
    case diverged
    /// An error ended it.
    case failed

    /// The reasons a run log may hold, for messages: "completed, stopped, interrupted, diverged or failed".
    public static var spelled: String {
        allCases.dropLast().map(\.rawValue).joined(separator: ", ") + " or " + allCases.last!.rawValue
    }
}

/// Where a run is: what the trainer reports while it runs, what the UI shows, what a log's end stands for.
public enum RunPhase: String, Equatable, Sendable, CaseIterable {
    /// Before the first step (building the model, loading data).
    case starting
    case running
    case paused
    /// All planned steps done.
    case finished
    /// Stopped by a person, a command or a signal before the end.
    case stopped
    /// The divergence guard stopped the run (loss is nan/inf or exploded).
    case diverged
    /// An error ended the run.
    case failed

    /// The phase a run is in once it ended for `reason`.
    public init(ended reason: EndReason) {
        switch reason {
        case .completed: self = .finished
        case .stopped, .interrupted: self = .stopped
        case .diverged: self = .diverged
        case .failed: self = .failed
        }
    }

    /// The run can still change (training is going on or can resume).
    public var isActive: Bool { self == .starting || self == .running || self == .paused }
}

/// The last line of a run log: how it ended and a summary.
public struct EndRecord: Codable, Sendable, Equatable {
    public var reason: EndReason
    public var step: Int
    public var epoch: Int
    public var finalLoss: Double?
    public var bestEvalLoss: Double?
    public var bestAccuracy: Double?
    public var finalAccuracy: Double?
    public var wallTime: Double
    public var message: String?

    public init(reason: EndReason, step: Int, epoch: Int, finalLoss: Double?, bestEvalLoss: Double?, bestAccuracy: Double?,
                finalAccuracy: Double?, wallTime: Double, message: String? = nil) {
        self.reason = reason; self.step = step; self.epoch = epoch; self.finalLoss = finalLoss
        self.bestEvalLoss = bestEvalLoss; self.bestAccuracy = bestAccuracy; self.finalAccuracy = finalAccuracy
        self.wallTime = wallTime; self.message = message
    }

    public enum CodingKeys: String, CodingKey {
        case reason, step, epoch, finalLoss = "final_loss", bestEvalLoss = "best_eval_loss", bestAccuracy = "best_accuracy"
        case finalAccuracy = "final_accuracy", wallTime = "wall_time", message
    }
}

/// Any one line of a run log.
public enum RunRecord: Sendable, Equatable {
    case header(RunHeader)
    case step(StepRecord)
    case eval(EvalRecord)
    /// Scalars logged between steps (`run.log`).
    case metrics(MetricsRecord)
    case event(EventRecord)
    case end(EndRecord)
}
