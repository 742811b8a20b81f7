import Foundation
import LRTensor
import LRModels
import LROptim
import LRLog

/// Trains one model, applying steering commands at step boundaries and logging everything.
///
/// The loop in `run()` reads top to bottom: commands → (pause) → forward/backward over the micro-batches →
/// guard → clip → optimizer step → log → scheduler → evaluation → checkpoint. It runs on its own thread; the only
/// shared state is the `TrainerChannel`.
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
    let batcher: Batcher
    public let datasetName: String
    public let datasetNotice: String?
    public let stepsPerEpoch: Int
    public let totalSteps: Int

    public internal(set) var step = 0
    var paused = false
    var stepsWhilePaused = 0
    var stopRequested: EndReason? = nil
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
    var bestEvalLoss: Double? = nil
    var bestAccuracy: Double? = nil
    var lastEval: EvalRecord? = nil
    /// Offset of wall time when resuming, so the log's wall time keeps growing across restarts.
    var wallTimeOffset = 0.0

    public init(config: TrainConfig, options: RunOptions = RunOptions(), channel: TrainerChannel = TrainerChannel()) throws {
        var config = config
        // A resumed run is defined by its checkpoint, config included.
        let resumed = try options.resumeCheckpoint.map { try CheckpointStore.load(url: $0) }
        if let resumed { config = resumed.state.config }
        try config.validate()
        self.options = options
        self.channel = channel
        if let t = options.threads { BLAS.setThreads(t) }

        let loaded = try DataLoader.load(spec: config.data, normalize: config.normalize)
        self.train = loaded.dataset.train
        self.test = loaded.dataset.test
        self.sampleShape = loaded.dataset.sampleShape
        self.datasetName = loaded.dataset.name
        self.datasetNotice = loaded.notice
        self.batcher = try Batcher(split: train, sampleShape: sampleShape, batchSize: config.batchSize, seed: config.seed)
        guard batcher.stepsPerEpoch >= config.accumSteps else {
            throw TrainError("the training split (\(train.count) samples) holds fewer than one optimizer step of "
                + "\(config.batchSize)x\(config.accumSteps) samples: lower --batch-size or --accum-steps")
        }
        self.stepsPerEpoch = batcher.stepsPerEpoch / config.accumSteps
        let planned = stepsPerEpoch * config.epochs
        self.totalSteps = config.maxSteps.map { config.epochs > 0 ? min($0, planned) : $0 } ?? planned
        if config.scheduler == TrainConfig.defaultScheduler {
            config.scheduler = TrainConfig.defaultSchedule(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch)
        }
        self.config = config

        self.network = try ModelFactory.make(name: config.model, sampleShape: sampleShape,
                                             classCount: loaded.dataset.classCount, seed: config.seed,
                                             hidden: config.hidden, dropout: Float(config.dropout))
        self.loss = SoftmaxCrossEntropy(labelSmoothing: Float(config.labelSmoothing))
        self.optimizer = try OptimizerFactory.make(spec: Trainer.optimizerSpec(config), rules: config.groups,
                                                   parameters: network.parameters)
        let perEpoch = config.schedulerInterval == .epoch
        let context = ScheduleContext(totalSteps: perEpoch ? config.epochs : totalSteps,
                                      stepsPerEpoch: perEpoch ? 1 : stepsPerEpoch)
        self.lrControl = try LRControl(spec: config.scheduler, optimizer: optimizer, context: context)
        self.guardState = DivergenceGuard(factor: config.guardFactor)

        if options.writeFiles {
            let dir = try options.runDirectory ?? RunDirectory.makeDefault()
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            self.runDirectory = dir
            self.logURL = options.logPath ?? dir.appendingPathComponent("run.jsonl")
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

        if let logURL {
            self.log = try RunLogWriter(url: logURL)
        }
        publishStatus()
    }

    // MARK: the loop

    /// Trains until the planned steps are done or the run is stopped; returns how it ended.
    @discardableResult
    public func run() -> EndRecord {
        writeHeader()
        if let notice = datasetNotice { emit(event: .info, text: "dataset", message: notice) }
        if let r = options.resumeCheckpoint { emit(event: .info, text: "resume", message: "resumed from \(r.path) at step \(step)") }
        if let i = options.initCheckpoint { emit(event: .info, text: "init", message: "weights from \(i.path)") }
        var endReason = EndReason.completed
        var endMessage: String? = nil

        while true {
            if SignalFlag.received { endReason = .interrupted; endMessage = "received \(SignalFlag.name)"; break }
            applyScriptAndCommands()
            if let reason = stopRequested { endReason = reason; break }
            if step >= totalSteps { break }
            if paused && stepsWhilePaused == 0 {
                if options.headless && !scriptHasPendingEntries && !channel.hasCommands {
                    endReason = .stopped
                    endMessage = "paused at step \(step) with no scripted command left to resume it (headless run)"
                    break
                }
                Thread.sleep(forTimeInterval: 0.005)
                continue
            }
            if paused { stepsWhilePaused -= 1 }
            if let tripped = trainOneStep() {
                endReason = tripped
                break
            }
        }
        return finish(reason: endReason, message: endMessage)
    }

    /// One optimizer step. Returns a reason to end the run (guard with `stop`), or nil.
    func trainOneStep() -> EndReason? {
        clock.begin()
        network.zeroGrad()
        let epoch = step / stepsPerEpoch
        let firstBatch = (step % stepsPerEpoch) * config.accumSteps
        var lossSum: Double = 0
        for micro in 0..<config.accumSteps {
            // The batch of a step is a pure function of (seed, step): resume and rollback need no data state.
            // The index is below `stepsPerEpoch * accumSteps`, within the epoch, so seek cannot fail.
            try! batcher.seek(epoch: epoch, batchIndex: firstBatch + micro)
            batcher.next()
            let logits = network.forward(batcher.input, training: true)
            lossSum += loss.compute(logits: logits, labels: batcher.labels, computeGradient: true).loss
            if config.accumSteps > 1 { loss.gradLogits.scale(by: 1 / Float(config.accumSteps)) }
            network.backward(loss.gradLogits)
        }
        let stepLoss = lossSum / Double(config.accumSteps)
        let gradNorm = globalGradNorm()

        if let why = guardState.check(loss: stepLoss, gradNorm: gradNorm) {
            return divergence(why, loss: stepLoss)
        }
        if let maxNorm = config.clipGradNorm, gradNorm > maxNorm {
            let scale = Float(maxNorm / (gradNorm + 1e-6))
            for group in optimizer.groups {
                for p in group.params { p.grad.scale(by: scale) }
            }
        }
        let usedLRs = lrControl.applyingWarmup(to: optimizer) { optimizer.step() }
        step += 1
        lastLoss = stepLoss
        lastGradNorm = gradNorm

        let samples = config.batchSize * config.accumSteps
        let rate = clock.end(samples: samples)
        let record = StepRecord(step: step, epoch: epoch, lrs: usedLRs, loss: stepLoss, gradNorm: gradNorm,
                                samplesPerSec: rate, wallTime: wallTime)
        self.record(.step(record))
        options.parameterObserver?(record, network.parameters)

        if config.schedulerInterval == .step && !lrControl.needsMetric {
            lrControl.step(optimizer: optimizer, metric: nil)
        }
        let epochEnded = step % stepsPerEpoch == 0
        let evalDue = options.evaluate && (epochEnded || step == totalSteps || (config.evalEvery.map { step % $0 == 0 } ?? false))
        let eval = evalDue ? evaluate() : nil
        if lrControl.needsMetric {
            // ReduceLROnPlateau learns from evaluations: at epoch ends, or at every evaluation when stepping per step.
            if let eval, epochEnded || config.schedulerInterval == .step {
                lrControl.step(optimizer: optimizer, metric: metric(for: eval))
            }
        } else if epochEnded && config.schedulerInterval == .epoch {
            lrControl.step(optimizer: optimizer, metric: nil)
        }
        if config.checkpointEvery > 0 && step % config.checkpointEvery == 0 {
            saveCheckpoint(label: "auto")
        }
        if step % 16 == 0 || paused { publishStatus() }
        return nil
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

    private func finish(reason: EndReason, message: String?) -> EndRecord {
        if options.writeFiles { saveCheckpoint(label: "final", name: "final.ckpt") }
        let end = EndRecord(reason: reason, step: step, epoch: max(0, step - 1) / stepsPerEpoch, finalLoss: lastLoss,
                            bestEvalLoss: bestEvalLoss, bestAccuracy: bestAccuracy, finalAccuracy: lastEval?.accuracy,
                            wallTime: wallTime, message: message)
        record(.end(end))
        logging { try log?.close() }
        log = nil
        channel.update {
            $0.phase = RunPhase(ended: reason)
            if let message { $0.message = message }
        }
        publishStatus(keepPhase: true)
        return end
    }

    // MARK: records

    func writeHeader() {
        let iso = ISO8601DateFormatter()
        var cfg = config.flattened
        cfg["dataset"] = datasetName
        if let r = options.resumeCheckpoint { cfg["resumed_from"] = r.path }
        if let i = options.initCheckpoint { cfg["init_from"] = i.path }
        let header = RunHeader(lrtopVersion: options.lrtopVersion, config: cfg, seed: config.seed,
                               startTime: iso.string(from: startDate), groups: optimizer.groups.map(\.name),
                               stepsPerEpoch: stepsPerEpoch, totalSteps: totalSteps)
        record(.header(header))
    }

    func emit(event kind: EventRecord.Kind, text: String, before: [Double]? = nil, message: String? = nil) {
        let after = optimizer.groups.map(\.lr)
        let record = EventRecord(step: step, kind: kind, text: text, lrsBefore: before ?? after, lrsAfter: after,
                                 message: message, wallTime: wallTime)
        self.record(.event(record))
        flushLog()
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
            if !keepPhase { s.phase = paused ? .paused : .running }
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
            s.runDirectory = runDirectory?.path
            s.logPath = logURL?.path
            s.datasetName = datasetName
            s.modelSummary = "\(config.model) \(network.parameterCount) params"
        }
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

    /// Flushes the log (the UI calls this on quit and signals).
    public func flushLog() { logging { try log?.flush() } }

    /// A log that cannot be written (disk full, folder removed) must not kill the training it records: the first
    /// failure is reported, and the run goes on without a log.
    func logging(_ body: () throws -> Void) {
        guard log != nil else { return }
        do { try body() } catch {
            log = nil
            let message = "the run log could not be written (\(error)); training continues without a log"
            channel.update { $0.message = message }
            let event = EventRecord(step: step, kind: .error, text: "log", lrsBefore: optimizer.groups.map(\.lr),
                                    lrsAfter: optimizer.groups.map(\.lr), message: message, wallTime: wallTime)
            if options.publishRecords { channel.publish(.event(event)) }
            options.observer?(.event(event))
        }
    }
}
