import Foundation
import LRTensor
import LRModels
import LROptim
import LRLog
import LRCommand

/// Trains one model, applying steering commands at step boundaries and logging everything.
///
/// The loop in `run()` reads top to bottom: commands → (pause) → one step (`trainOneStep`: forward/backward over
/// the micro-batches → guard → clip → optimizer step → log → evaluation → scheduler → checkpoint). It runs on its
/// own thread; the only shared state is the `TrainerChannel`.
public final class Trainer: @unchecked Sendable {
    public let config: TrainConfig
    public let options: RunOptions
    public let channel: TrainerChannel

    let network: Network
    let loss: SoftmaxCrossEntropy
    let optimizer: any Optimizer
    var lrControl: LRControl
    let train: DataSplit
    let test: DataSplit
    let sampleShape: [Int]
    let classCount: Int
    let batcher: Batcher
    public let datasetName: String
    public let datasetNotice: String?
    /// Problems with the run's options that do not stop it (a group rule matching nothing), logged as info events.
    public let setupWarnings: [String]
    public let stepsPerEpoch: Int
    public let totalSteps: Int

    public internal(set) var step = 0
    var paused = false
    var stepsWhilePaused = 0
    var stopRequested: EndReason? = nil
    /// Why the guard paused the run (nil when it runs, or a person paused it).
    var pausedByGuard: String? = nil
    /// Step boundaries so far (each pass of the loop applies commands at one).
    var boundary = 0
    /// The boundary of the last automatic checkpoint before a risky command.
    var riskCheckpointBoundary = -1
    /// The latest checkpoint holds the state as it is now (nothing trained or applied since).
    var checkpointIsCurrent = false
    /// Guard rollbacks since the run last got past the step where it diverged (`DivergenceGuard.swift`).
    var rollbacksInARow = 0
    /// The furthest step at which the guard tripped in the current run of rollbacks.
    var divergedAtStep = 0
    var guardState: DivergenceGuard
    var checkpoints: CheckpointStore
    var log: RunLogWriter?
    public let runDirectory: URL?
    public let logURL: URL?
    var scriptCursor = 0
    let startDate = Date()
    var clock = StepClock()
    var lastLoss: Double? = nil
    var lastGradNorm: Double? = nil
    /// Top-1 accuracy on the last step's batch (its micro-batches together): a free by-product of the loss, logged
    /// as the step's `train/acc` metric.
    var lastBatchAccuracy = Double.nan
    var bestEvalLoss: Double? = nil
    var bestAccuracy: Double? = nil
    var lastEval: EvalRecord? = nil
    /// `--lr` given with `--resume`: applied as an override event at the resumed step.
    public internal(set) var resumeLR: Double? = nil
    /// The log already holds this run's records up to the checkpoint: new records go after them.
    var appendingToLog = false
    /// Why the run cannot go on (its log cannot be written): it stops at the next step boundary.
    var failure: String? = nil
    /// The first write (log or checkpoint) that failed for want of space: a full disk, a quota, a file-size limit.
    public internal(set) var outOfSpace: String? = nil
    /// The last LR range test (`find-lr`) this run made.
    public internal(set) var lastRangeTest: LRRangeTestResult? = nil
    /// `lrtop find-lr`: the run only sweeps; it ends without training or a final checkpoint.
    var rangeTestOnly = false
    /// Offset of wall time when resuming, so the log's wall time keeps growing across restarts.
    var wallTimeOffset = 0.0
    /// A "what if" branch's own trainer (see `BranchSession`): no checkpoints, no files but its sub-run log.
    var isBranch = false
    /// The branches of a `fork`, while they train or wait for `adopt K` / `drop`; the run itself waits.
    var branches: BranchSession? = nil
    /// The most steps a second the run takes (`pace`), or nil: full speed.
    var pace: Double? = nil
    /// Under a pace, when the next step may start (monotonic seconds).
    var paceDue = 0.0
    /// Seconds one step takes at full speed (smoothed over the last steps): what `pace /2` halves when no pace is set.
    var stepSeconds: Double? = nil

    public init(config: TrainConfig, options: RunOptions = RunOptions(), channel: TrainerChannel = TrainerChannel()) throws {
        var config = config
        // A resumed run is defined by its checkpoint, config included.
        let resumed = try options.resumeCheckpoint.map { try CheckpointStore.load(url: $0) }
        if let resumed {
            let given = config
            config = try TrainConfig.resumed(saved: resumed.state.config, given: given, changed: options.resumeChanges)
            if options.resumeChanges.contains("lr") && given.lr != config.lr { resumeLR = given.lr }
        }
        try config.validate()
        self.options = options
        self.channel = channel
        if let t = options.threads { BLAS.setThreads(t) }

        let loaded = try options.preloadedData ?? DataLoader.load(spec: config.data, normalize: config.normalize)
        self.train = loaded.dataset.train
        self.test = loaded.dataset.test
        self.sampleShape = loaded.dataset.sampleShape
        self.classCount = loaded.dataset.classCount
        self.datasetName = loaded.dataset.name
        self.datasetNotice = loaded.notice
        self.batcher = try Batcher(split: train, sampleShape: sampleShape, batchSize: config.batchSize, seed: config.seed)
        guard batcher.stepsPerEpoch >= config.accumSteps else {
            throw TrainError("the training split (\(train.count) samples) holds fewer than one optimizer step of "
                + "\(config.batchSize)x\(config.accumSteps) samples: lower --batch-size or --accum-steps")
        }
        self.stepsPerEpoch = batcher.stepsPerEpoch / config.accumSteps
        let (planned, overflow) = stepsPerEpoch.multipliedReportingOverflow(by: config.epochs)
        if overflow {
            throw TrainError("--epochs \(config.epochs) gives more steps than can be counted: give fewer epochs or --max-steps")
        }
        self.totalSteps = config.maxSteps.map { config.epochs > 0 ? min($0, planned) : $0 } ?? planned
        if let resumed, totalSteps <= resumed.state.step {
            throw TrainError("the checkpoint is at step \(resumed.state.step) and this run ends at step \(totalSteps): "
                + "give a larger --max-steps or --epochs to continue it")
        }
        // The run's length is known: the default schedule (nil) is sized to it, and the config says which it is.
        let schedule = config.schedule(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch)
        config.scheduler = schedule
        self.config = config

        try MemoryEstimate.check(config, sampleShape: sampleShape, classCount: loaded.dataset.classCount)
        self.network = try ModelFactory.make(config.model, sampleShape: sampleShape,
                                             classCount: loaded.dataset.classCount, seed: config.seed,
                                             hidden: config.hidden, dropout: Float(config.dropout))
        if network.layerThreaded { BLAS.setLibraryThreads(1) }
        let parameters = network.parameters
        let rules = try ParamGroupRule.parse(lines: config.groups)
        self.setupWarnings = zip(config.groups, rules).filter { _, rule in !parameters.contains(where: rule.matches) }
            .map { text, _ in
                "--group '\(text)' matches no parameter (parameters: \(parameters.map(\.name).joined(separator: ", ")))"
            }
        self.loss = SoftmaxCrossEntropy(labelSmoothing: Float(config.labelSmoothing))
        self.optimizer = try OptimizerFactory.make(spec: Trainer.optimizerSpec(config), rules: config.groups,
                                                   parameters: network.parameters)
        let perEpoch = config.schedulerInterval == .epoch
        let context = ScheduleContext(totalSteps: perEpoch ? config.epochs : totalSteps,
                                      stepsPerEpoch: perEpoch ? 1 : stepsPerEpoch)
        self.lrControl = try LRControl(spec: schedule, optimizer: optimizer, context: context)
        self.guardState = DivergenceGuard(factor: config.guardFactor)
        // Everything that can refuse the run does so before its folder is made.
        if let script = options.script {
            try Trainer.validate(script, groups: optimizer.groups.map(\.name), totalSteps: totalSteps,
                                 stepsPerEpoch: stepsPerEpoch, config: config)
        }

        if options.writeFiles {
            let dir = try options.runDirectory ?? RunDirectory.makeDefault()
            let logURL = options.logPath ?? dir.appendingPathComponent("run.jsonl")
            appendingToLog = try RunDirectory.prepare(dir, log: logURL, resuming: resumed != nil, force: options.force)
            self.runDirectory = dir
            self.logURL = logURL
        } else {
            self.runDirectory = nil
            self.logURL = nil
        }
        self.checkpoints = CheckpointStore(directory: runDirectory?.appendingPathComponent("checkpoints"),
                                           keep: config.checkpointKeep)

        if let resumed {
            try restore(resumed.state, tensors: resumed.tensors)
        } else if let initURL = options.initCheckpoint {
            if initURL.pathExtension.lowercased() == "safetensors" {
                try network.load(Safetensors.read(contentsOf: initURL))
            } else {
                let ckpt = try CheckpointStore.load(url: initURL)
                try loadWeights(ckpt.tensors, from: initURL.path)
            }
        }

        if let script = options.script { scriptCursor = script.entries.firstIndex { $0.step >= step } ?? script.entries.count }
        pace = options.pace.stepsPerSecond(stepsLeft: totalSteps - step)
        if let logURL {
            do { self.log = try RunLogWriter(url: logURL, append: appendingToLog) } catch { throw TrainError("\(error)") }
            if let ring = options.logLines {
                // A continued log's new lines are numbered after those it holds, as a viewer reading the file counts.
                if appendingToLog { ring.startAt(line: RunDirectory.lineCount(of: logURL)) }
                self.log?.tap = ring
            }
        }
        publishStatus()
    }

    /// A trainer for one branch of `parent`: the same data, model and optimizer kinds, its own copies of the
    /// weights and state (restored from the fork point by the caller), so branches can train side by side.
    /// Records go to `log` (the branch's sub-run log) and to `observer`; nothing else is written.
    init(branchOf parent: Trainer, subrun: SubRun, log: RunLogWriter?,
         observer: (@Sendable (RunRecord) -> Void)?) throws {
        var options = RunOptions()
        options.subrun = subrun
        options.writeFiles = false
        options.evaluate = parent.options.evaluate
        options.lrtopVersion = parent.options.lrtopVersion
        options.observer = observer
        self.options = options
        self.channel = TrainerChannel()
        self.config = parent.config
        self.train = parent.train
        self.test = parent.test
        self.sampleShape = parent.sampleShape
        self.classCount = parent.classCount
        self.datasetName = parent.datasetName
        self.datasetNotice = nil
        self.setupWarnings = []
        self.stepsPerEpoch = parent.stepsPerEpoch
        self.totalSteps = parent.totalSteps
        self.batcher = try Batcher(split: train, sampleShape: sampleShape, batchSize: config.batchSize, seed: config.seed)
        self.network = try ModelFactory.make(config.model, sampleShape: sampleShape, classCount: classCount,
                                             seed: config.seed, hidden: config.hidden, dropout: Float(config.dropout))
        self.loss = SoftmaxCrossEntropy(labelSmoothing: Float(config.labelSmoothing))
        self.optimizer = try OptimizerFactory.make(spec: Trainer.optimizerSpec(config), rules: config.groups,
                                                   parameters: network.parameters)
        self.lrControl = parent.lrControl
        self.guardState = parent.guardState
        self.checkpoints = CheckpointStore(directory: nil, keep: 1)
        self.runDirectory = nil
        self.logURL = nil
        self.log = log
        self.isBranch = true
        self.wallTimeOffset = parent.wallTime
    }

    // MARK: the loop

    /// Trains until the planned steps are done or the run is stopped; returns how it ended.
    @discardableResult
    public func run() -> EndRecord {
        if !appendingToLog { writeHeader() }
        if let notice = datasetNotice { emit(event: .info, text: "dataset", message: notice) }
        for warning in setupWarnings { emit(event: .info, text: "group", message: warning) }
        if let r = options.resumeCheckpoint {
            let how = appendingToLog ? "; the records below continue this log from that step" : ""
            emit(event: .info, text: "resume", message: "resumed from \(r.path) at step \(step)\(how)")
        }
        if let lr = resumeLR { overrideLR(lr) }
        if let i = options.initCheckpoint { emit(event: .info, text: "init", message: "weights from \(i.path)") }
        var endReason = EndReason.completed
        var endMessage: String? = nil

        while true {
            if SignalFlag.received { endReason = .interrupted; endMessage = "received \(SignalFlag.name)"; break }
            if let failure { endReason = .failed; endMessage = failure; break }
            applyScriptAndCommands()
            if let reason = stopRequested { endReason = reason; break }
            if branches != nil {
                channel.activity.enter(.branches, step: step)
                if let (reason, message) = tendBranches() { endReason = reason; endMessage = message; break }
                continue
            }
            if step >= totalSteps { break }
            if paused && stepsWhilePaused == 0 {
                // A served headless run paused by a viewer waits for one to resume it (as a bridged run does).
                if options.headless && !scriptHasPendingEntries && !channel.hasCommands
                    && (options.socketPath == nil || pausedByGuard != nil) {
                    if let why = pausedByGuard {
                        endReason = .diverged
                        endMessage = "\(why); a headless run cannot be resumed, so it ends here"
                    } else {
                        endReason = .stopped
                        endMessage = "paused at step \(step) with no scripted command left to resume it (headless run)"
                    }
                    break
                }
                channel.activity.enter(.paused, step: step)
                Thread.sleep(forTimeInterval: 0.005)
                continue
            }
            if !paused, let wait = paceWait() {
                channel.activity.enter(.pacing, step: step)
                // Under a pace: wait in short slices, so commands (`pace off`, `stop`) and signals still act at once.
                Thread.sleep(forTimeInterval: min(wait, 0.01))
                continue
            }
            if paused { stepsWhilePaused -= 1 }
            let began = Self.monotonicSeconds()
            if let tripped = trainOneStep() {
                endReason = tripped
                break
            }
            notePace(stepBegan: began)
        }
        channel.activity.enter(.finishing, step: step)
        endBranches(because: endMessage ?? "the run \(endReason == .completed ? "ended" : endReason.rawValue)")
        answerUnappliedCommands()
        return finish(reason: endReason, message: endMessage)
    }

    /// One optimizer step, in sections. Returns a reason to end the run (guard with `stop`), or nil.
    func trainOneStep() -> EndReason? {
        clock.begin()
        checkpointIsCurrent = false
        let epoch = step / stepsPerEpoch

        // 1. Forward and backward over the step's micro-batches.
        let (stepLoss, gradNorm) = computeGradients()

        // 2. The divergence guard, before the gradients can reach the weights.
        if let why = guardState.check(loss: stepLoss, gradNorm: gradNorm) {
            return divergence(why, loss: stepLoss)
        }

        // 3. Clip, then the optimizer step at the LR in force (the warmup ramp applied to it).
        channel.activity.enter(.optimizerStep, step: step)
        clipGradients(norm: gradNorm)
        let usedLRs = lrControl.applyingWarmup(to: optimizer) { optimizer.step() }
        step += 1
        lastLoss = stepLoss
        lastGradNorm = gradNorm

        // 4. The step's record: to the log, the UI, the observers.
        let rate = clock.end(samples: config.batchSize * config.accumSteps)
        let record = StepRecord(step: step, epoch: epoch, lrs: usedLRs, loss: stepLoss, gradNorm: gradNorm,
                                samplesPerSec: rate, wallTime: wallTime,
                                metrics: [MetricValue(Self.batchAccuracyMetric, lastBatchAccuracy)])
        self.record(.step(record))
        options.parameterObserver?(record, network.parameters)

        // 5. Evaluation: at each epoch's end, at the run's end, and every --eval-every steps.
        let epochEnded = step % stepsPerEpoch == 0
        let evalDue = epochEnded || step == totalSteps || (config.evalEvery.map { step % $0 == 0 } ?? false)
        let eval = options.evaluate && evalDue ? evaluate() : nil

        // 6. The scheduler, by its rules.
        stepScheduler(epochEnded: epochEnded, eval: eval)

        // 7. A checkpoint every --checkpoint-every steps (not in a branch); the status now and then.
        if config.checkpointEvery > 0 && step % config.checkpointEvery == 0 && !isBranch {
            channel.activity.enter(.checkpoint, step: step)
            saveCheckpoint(label: "auto")
        }
        if step % 16 == 0 || paused { publishStatus() }
        return nil
    }

    /// When the scheduler steps, after an optimizer step (PyTorch's loop and Lightning's `interval`):
    ///  1. a scheduler stepped per step (`--scheduler-interval step`): after every optimizer step;
    ///  2. one stepped per epoch: at each epoch's end;
    ///  3. ReduceLROnPlateau, which learns from a metric: on an evaluation, at epoch ends (per epoch) or at every
    ///     evaluation (per step); without one it does not step.
    func stepScheduler(epochEnded: Bool, eval: EvalRecord?) {
        if lrControl.needsMetric {
            guard let eval, epochEnded || config.schedulerInterval == .step else { return }
            lrControl.step(optimizer: optimizer, metric: metric(for: eval))
        } else if config.schedulerInterval == .step || epochEnded {
            lrControl.step(optimizer: optimizer, metric: nil)
        }
    }

    /// Forward and backward over the step's micro-batches: the gradients of step `step + 1`, its mean loss and
    /// the global gradient norm before clipping.
    func computeGradients() -> (loss: Double, gradNorm: Double) {
        network.zeroGrad()
        let epoch = step / stepsPerEpoch
        let firstBatch = (step % stepsPerEpoch) * config.accumSteps
        var lossSum: Double = 0
        var correct = 0, seen = 0
        for micro in 0..<config.accumSteps {
            // The batch of a step is a pure function of (seed, step): resume and rollback need no data state.
            // The index is below `stepsPerEpoch * accumSteps`, within the epoch, so seek cannot fail.
            channel.activity.enter(.loadingBatch, step: step)
            try! batcher.seek(epoch: epoch, batchIndex: firstBatch + micro)
            batcher.next()
            channel.activity.enter(.forward, step: step)
            let logits = network.forward(batcher.input, training: true)
            let result = loss.compute(logits: logits, labels: batcher.labels, computeGradient: true)
            lossSum += result.loss
            correct += result.correct
            seen += result.count
            if config.accumSteps > 1 { loss.gradLogits.scale(by: 1 / Float(config.accumSteps)) }
            channel.activity.enter(.backward, step: step)
            network.backward(loss.gradLogits)
        }
        lastBatchAccuracy = seen > 0 ? Double(correct) / Double(seen) : .nan
        return (lossSum / Double(config.accumSteps), globalGradNorm())
    }

    /// The name of the step records' batch accuracy metric.
    public static let batchAccuracyMetric = "train/acc"

    /// `--clip-grad-norm`: scales the gradients down to the limit when their norm is above it.
    func clipGradients(norm gradNorm: Double) {
        if let maxNorm = config.clipGradNorm, gradNorm > maxNorm {
            let scale = Float(maxNorm / (gradNorm + 1e-6))
            for group in optimizer.groups {
                for p in group.params { p.grad.scale(by: scale) }
            }
        }
    }

    private func metric(for eval: EvalRecord) -> Double {
        switch config.plateauMetric {
        case .valAccuracy: return eval.accuracy
        case .trainLoss: return lastLoss ?? eval.loss
        case .valLoss: return eval.loss
        }
    }

    /// The optimizer spec with the CLI's --lr, --weight-decay and --momentum filled in where the spec names none.
    static func optimizerSpec(_ config: TrainConfig) throws -> String {
        var spec = try OptimizerSpec(parsing: config.optimizer)
        func fill(_ key: String, _ value: Double?) {
            guard let value, !spec.item.options.contains(where: { $0.key == key }) else { return }
            spec.item.options.append((key: key, value: "\(value)"))
        }
        fill("lr", config.lr)
        fill("weight_decay", config.weightDecay)
        fill("momentum", config.momentum)
        return spec.item.text
    }

    func globalGradNorm() -> Double {
        var total: Double = 0
        for p in network.parameters { total += p.grad.sumOfSquares }
        return total.squareRoot()
    }

    var wallTime: Double { wallTimeOffset + Date().timeIntervalSince(startDate) }

    // MARK: evaluation

    /// Loss and top-1 accuracy on the test split, in eval mode (BatchNorm running stats, no dropout).
    @discardableResult
    public func evaluate() -> EvalRecord {
        channel.activity.enter(.evaluating, step: step)
        let result = network.evaluate(test, sampleShape: sampleShape)
        let record = EvalRecord(step: step, epoch: max(0, step - 1) / stepsPerEpoch, loss: result.loss,
                                accuracy: result.accuracy, wallTime: wallTime)
        lastEval = record
        bestEvalLoss = min(bestEvalLoss ?? .infinity, record.loss)
        bestAccuracy = max(bestAccuracy ?? 0, record.accuracy)
        self.record(.eval(record))
        publishStatus()
        return record
    }

    func pause(reason: String?) {
        paused = true
        stepsWhilePaused = 0
        flushLog()
        channel.update { $0.message = reason }
        publishStatus()
    }

    // MARK: ending

    func finish(reason: EndReason, message: String?) -> EndRecord {
        var reason = reason, message = message
        // Whatever is still buffered must reach the log before the run can call itself complete.
        flushLog()
        if let failure { reason = .failed; message = failure }
        var finalCheckpoint: CheckpointStore.Entry? = nil
        if rangeTestOnly && reason == .stopped {
            message = message ?? "find-lr only: no training, so no final checkpoint"
        } else if options.writeFiles {
            finalCheckpoint = saveCheckpoint(label: "final", name: "final")
        }
        func end() -> EndRecord {
            var text = message
            if reason == .failed && options.writeFiles {
                text = (text ?? "") + (finalCheckpoint?.url.map { "; final checkpoint written to \($0.path)" }
                    ?? "; the final checkpoint could not be written either")
            }
            return EndRecord(reason: reason, step: step, epoch: max(0, step - 1) / stepsPerEpoch, finalLoss: lastLoss,
                             bestEvalLoss: bestEvalLoss, bestAccuracy: bestAccuracy, finalAccuracy: lastEval?.accuracy,
                             wallTime: wallTime, message: text)
        }
        var record = end()
        self.record(.end(record))
        logging { try log?.close() }
        log = nil
        if let failure, reason != .failed {
            // The end record itself could not be written.
            reason = .failed; message = failure
            record = end()
        }
        channel.activity.enter(.finished, step: step)
        channel.update {
            $0.phase = RunPhase(ended: reason)
            if let text = record.message { $0.message = text }
        }
        publishStatus(keepPhase: true)
        return record
    }

    // MARK: records

    func writeHeader() {
        let iso = ISO8601DateFormatter()
        var cfg = config.flattened
        cfg["dataset"] = datasetName
        if let r = options.resumeCheckpoint { cfg["resumed_from"] = r.path }
        if let i = options.initCheckpoint { cfg["init_from"] = i.path }
        var header = RunHeader(lrtopVersion: options.lrtopVersion, config: cfg, seed: config.seed,
                               startTime: iso.string(from: startDate), groups: optimizer.groups.map(\.name),
                               stepsPerEpoch: stepsPerEpoch, totalSteps: totalSteps, subrun: options.subrun)
        header.socket = options.socketPath
        record(.header(header))
        // At once, not a second later with the first steps: `lrtop attach RUN_DIR` finds the socket in it.
        flushLog()
    }

    @discardableResult
    func emit(event kind: EventRecord.Kind, text: String, command: Command? = nil, result: EventResult? = nil,
              before: [Double]? = nil, message: String? = nil) -> EventRecord {
        let after = optimizer.groups.map(\.lr)
        let record = EventRecord(step: step, kind: kind, text: text, command: command, result: result,
                                 lrsBefore: before ?? after, lrsAfter: after, message: message, wallTime: wallTime)
        self.record(.event(record))
        flushLog()
        return record
    }

    /// Every record goes out through here: to the log, to the UI, to the observer.
    func record(_ r: RunRecord) {
        if case .step(let step) = r { logging { try log?.write(step: step) } } else { logging { try log?.write(r) } }
        if options.publishRecords { channel.publish(r) }
        options.observer?(r)
    }

    func publishStatus(keepPhase: Bool = false) {
        let groups = optimizer.groups
        // The plan stops at the end of the run: beyond it, some schedules (cosine) would rise again.
        let plan = lrControl.plan(count: min(256, max(0, totalSteps - step)), optimizer: optimizer)
        channel.update { s in
            if !keepPhase { s.phase = paused || branches != nil ? .paused : .running }
            s.step = step
            s.epoch = min(step, max(0, totalSteps - 1)) / stepsPerEpoch
            s.totalSteps = totalSteps
            s.stepsPerEpoch = stepsPerEpoch
            s.groupNames = groups.map(\.name)
            s.lrs = groups.map(\.lr)
            s.held = lrControl.held
            s.overridden = lrControl.overridden
            s.optimizerSummary = optimizer.summary
            s.schedulerSpec = lrControl.spec
            s.schedulerStatus = lrControl.statusText
            s.plan = plan
            s.warmupLeft = lrControl.warmupLeft
            s.checkpoints = checkpoints.count
            s.checkpointFiles = checkpoints.filesOnDisk
            s.runDirectory = runDirectory?.path
            s.logPath = logURL?.path
            s.datasetName = datasetName
            s.modelSummary = "\(config.model) \(network.parameterCount) params"
            s.pace = pace
        }
    }
}

// MARK: pace

extension Trainer {
    static func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Seconds to wait before the next step under the pace, or nil when it may start now.
    func paceWait() -> Double? {
        guard pace != nil else { return nil }
        let wait = paceDue - Self.monotonicSeconds()
        return wait > 0 ? wait : nil
    }

    /// After a step that began at `began`: the full-speed step time, and when the next step is due under the pace
    /// (one period after this one began; never earlier, so a pause is not made up for with a burst).
    func notePace(stepBegan began: Double) {
        let took = Self.monotonicSeconds() - began
        stepSeconds = stepSeconds.map { 0.9 * $0 + 0.1 * took } ?? took
        if let pace { paceDue = max(paceDue, began) + 1 / pace }
    }

    /// Carries out `pace`: the new pace in force, and a note saying what it means.
    func setPace(_ change: Command.PaceChange) throws(CommandError) -> String {
        guard !isBranch else { throw CommandError("a branch trains at full speed: 'pace' the run itself") }
        let full = stepSeconds.map { 1 / max($0, 1e-9) }
        switch change {
        case .off:
            guard pace != nil else { throw CommandError("the run trains at full speed already (no pace set)") }
            pace = nil
        case .set(let rate): pace = rate
        case .scale(let f):
            if let p = pace { pace = p * f } else if f < 1, let full { pace = full * f } else {
                throw CommandError("the run trains at full speed (no pace set): 'pace /2' slows it, 'pace 20/s' sets a pace")
            }
        }
        if let p = pace, p >= Command.maxPace { pace = nil }
        paceDue = Self.monotonicSeconds() + (pace.map { 1 / $0 } ?? 0) - (stepSeconds ?? 0)
        let fullText = full.map { "about " + Command.paceText($0) + " here" } ?? "not measured yet"
        guard let pace else { return "full speed (" + fullText + ")" }
        return "at most " + Command.paceText(pace) + ", a step every " + Self.periodText(1 / pace) + " (full speed: " + fullText + ")"
    }

    /// "67 ms", "2.0 s".
    static func periodText(_ seconds: Double) -> String {
        seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : String(format: "%.1f s", seconds)
    }
}

extension Trainer {
    /// Runs `count` training steps and nothing else (no commands, evaluation or checkpoints), for `lrtop bench`;
    /// returns the seconds they took.
    public func timeSteps(_ count: Int) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<count { _ = trainOneStep() }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// The newest checkpoint's file (after `run()`: the final one), where a sweep trial's next rung resumes.
    public var latestCheckpointURL: URL? { checkpoints.latest?.url }

    /// Flushes the log (the UI calls this on quit and signals).
    public func flushLog() { logging { try log?.flush() } }

    /// A log that cannot be written (disk full, file size limit, folder removed) ends the run: records that are
    /// not kept would be lost silently. The failure is reported on the channel and to the observer (the log itself
    /// cannot take it), the run stops at the next step boundary, and `finish` still tries the final checkpoint.
    func logging(_ body: () throws -> Void) {
        guard log != nil, failure == nil else { return }
        do { try body() } catch {
            log = nil
            let message = "the run log could not be written: \(error); the run stops"
            if SafeFiles.isOutOfSpace((error as? LogError)?.code) { outOfSpace = outOfSpace ?? "\(error)" }
            failure = message
            channel.update { $0.message = message }
            let event = EventRecord(step: step, kind: .error, text: "log", lrsBefore: optimizer.groups.map(\.lr),
                                    lrsAfter: optimizer.groups.map(\.lr), message: message, wallTime: wallTime)
            if options.publishRecords { channel.publish(.event(event)) }
            options.observer?(.event(event))
        }
    }

    /// `--lr` on resume: every group's LR set to it (scaled by the group's `lr_scale`), logged as a command.
    func overrideLR(_ lr: Double) {
        let before = optimizer.groups.map(\.lr)
        let base = config.lr
        lrControl.set(Array(optimizer.groups.indices), optimizer: optimizer) { _ in lr }
        if base > 0 {
            for g in optimizer.groups where g.initialLR != base { g.lr = lr * g.initialLR / base }
        }
        emit(event: .command, text: "lr \(lr)", command: .lr(group: nil, .set(lr)), before: before,
             message: "--lr given with --resume: overrides the scheduled LR, which continues from it")
    }
}
