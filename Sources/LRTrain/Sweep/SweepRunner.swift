import Foundation
import Synchronization
import LRLog
import LRModels
import LRTensor
import LRCommand

/// Where a trial (one configuration with one seed) or a configuration stands.
public enum TrialState: String, Sendable, Codable {
    case queued, running
    /// Finished its rung; waits for the others of the rung to be ranked with them.
    case waiting
    /// Finished its rung among the best: waits for the next rung.
    case promoted
    /// Halving stopped it: not among the best at a rung.
    case stopped
    /// Trained the full budget.
    case done
    /// Diverged or failed; never promoted.
    case failed
    /// The sweep was interrupted while it ran or waited.
    case interrupted
}

/// One trial: a configuration trained with one seed, through the rungs it reached.
public struct TrialStatus: Sendable {
    public var name: String
    public var configuration: Int
    public var seed: UInt64
    public var state: TrialState = .queued
    /// Rungs finished.
    public var rungsDone = 0
    public var step = 0
    public var evals: [EvalRecord] = []
    /// Why it failed or ended early.
    public var message: String?
    public var seconds = 0.0
    /// The checkpoint its next rung resumes from.
    var checkpoint: URL?

    /// The evaluation at the end of a rung's budget.
    public func eval(at step: Int) -> EvalRecord? { evals.last { $0.step == step } }
}

/// Everything the leaderboard and the final table show, copied out under a lock.
public struct SweepSnapshot: Sendable {
    public var configurations: [SweepConfiguration]
    public var seeds: [UInt64]
    public var budgets: [Int]
    /// Trials in configuration-major order: configuration c's seed s is `trials[c * seeds.count + s]`.
    public var trials: [TrialStatus]
    /// The rung being trained (or the last one, when finished).
    public var rung = 0
    public var finished = false
    public var interrupted = false
    public var elapsed = 0.0
    public var metric: SweepMetric
    /// Why the sweep stopped on its own before the end: a trial could not write its log or checkpoint because the
    /// disk (or a quota, or a file-size limit) is full, so every trial after it would fail too.
    public var stoppedBy: String? = nil
    /// The warmup, in steps, a trial of a configuration with the default schedule (its own warmup + cosine) runs.
    public var defaultWarmupSteps: Int? = nil

    /// A configuration's warmup as its trials run it: the default schedule's own (`46 (default)`) when it has no
    /// scheduler of its own, never a `0` for a trial that warmed up.
    public func warmupText(of c: SweepConfiguration) -> String {
        if c.scheduler == nil, let w = defaultWarmupSteps { return "\(w) (default)" }
        return c.warmup.description
    }

    public func trials(of c: Int) -> ArraySlice<TrialStatus> { trials[(c * seeds.count)..<((c + 1) * seeds.count)] }

    /// A configuration's state, from its trials'.
    public func state(of c: Int) -> TrialState {
        let states = trials(of: c).map(\.state)
        for s in [TrialState.running, .failed, .interrupted, .stopped, .done, .promoted, .waiting] where states.contains(s) { return s }
        return .queued
    }

    /// The last rung every seed of the configuration finished (nil: none).
    public func rungReached(_ c: Int) -> Int? {
        let r = trials(of: c).map(\.rungsDone).min() ?? 0
        return r > 0 ? r - 1 : nil
    }

    /// The configuration's evaluations at a rung's end over its seeds (nil when a seed has none).
    public func evals(of c: Int, rung: Int) -> [EvalRecord]? {
        let b = budgets[rung]
        let e = trials(of: c).compactMap { $0.eval(at: b) }
        return e.count == seeds.count ? e : nil
    }

    /// Mean and sample standard deviation over the seeds of `value` at the configuration's last rung.
    public func estimate(of c: Int, _ value: (EvalRecord) -> Double) -> (mean: Double, spread: Double, rung: Int)? {
        guard let r = rungReached(c), let e = evals(of: c, rung: r) else { return nil }
        let (m, s) = Self.meanAndSpread(e.map(value))
        return (m, s, r)
    }

    /// The score halving ranks by at a rung (lower is better): the mean over the seeds.
    public func score(of c: Int, rung: Int) -> Double? {
        guard let e = evals(of: c, rung: rung) else { return nil }
        let v = e.map { metric.score($0) }
        return v.allSatisfy(\.isFinite) ? v.reduce(0, +) / Double(v.count) : nil
    }

    /// The best configuration among those that went furthest; one with a failed trial is never the best (its
    /// results stop where it failed, and the run it would reproduce fails).
    public var best: Int? {
        let reached = configurations.indices.filter { c in !trials(of: c).contains { $0.state == .failed } }
            .compactMap { c in rungReached(c).map { (c, $0) } }
        guard let top = reached.map(\.1).max() else { return nil }
        return reached.filter { $0.1 == top }.compactMap { c, r in score(of: c, rung: r).map { (c, $0) } }
            .min { $0.1 < $1.1 }?.0
    }

    public static func meanAndSpread(_ v: [Double]) -> (Double, Double) {
        guard !v.isEmpty else { return (.nan, 0) }
        let m = v.reduce(0, +) / Double(v.count)
        guard v.count > 1 else { return (m, 0) }
        let variance = v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)
        return (m, variance.squareRoot())
    }
}

/// What halving ranks configurations by.
public enum SweepMetric: String, Sendable, CaseIterable, Codable {
    case valLoss = "val_loss"
    case valAccuracy = "val_acc"
    public func score(_ e: EvalRecord) -> Double { self == .valLoss ? e.loss : -e.accuracy }
}

/// What happened, for progress lines.
public enum SweepEvent: Sendable {
    /// A trial finished a rung (or failed in it).
    case trialFinished(trial: Int, rung: Int)
    /// A rung ended: these configurations go on, the others stop.
    case rungFinished(rung: Int, promoted: [Int], stopped: [Int])
}

/// Runs a sweep: every trial is a `Trainer` logging to `DIR/trials/NAME/log.jsonl`; between rungs a trial stops at
/// its budget and the next rung resumes it from its final checkpoint, so a promoted trial trains exactly as one
/// run to the full budget would.
public final class SweepRunner: @unchecked Sendable {
    public let base: TrainConfig
    public let space: SearchSpace
    public let plan: HalvingPlan
    public let directory: URL
    public let jobs: Int
    public let stepsPerEpoch: Int
    public let totalSteps: Int
    let data: LoadedData
    let threads: Int?
    let version: String
    private let state: Mutex<SweepSnapshot>
    private let running = Mutex<[Int: TrainerChannel]>([:])
    private let stopRequested = Atomic<Bool>(false)
    private let start = Date()
    public var onEvent: (@Sendable (SweepEvent) -> Void)?

    public init(base: TrainConfig, space: SearchSpace, plan: HalvingPlan, directory: URL, data: LoadedData,
                stepsPerEpoch: Int, totalSteps: Int, metric: SweepMetric = .valLoss, jobs: Int = 1, threads: Int? = nil,
                version: String = "dev") {
        self.base = base; self.space = space; self.plan = plan; self.directory = directory; self.data = data
        self.stepsPerEpoch = stepsPerEpoch; self.totalSteps = totalSteps; self.jobs = max(1, jobs)
        self.threads = threads; self.version = version
        let configurations = space.configurations
        var trials: [TrialStatus] = []
        for c in configurations {
            for (i, seed) in space.seeds.enumerated() {
                trials.append(TrialStatus(name: space.seeds.count > 1 ? "\(c.name)-s\(i + 1)" : c.name,
                                          configuration: c.number - 1, seed: seed))
            }
        }
        var snapshot = SweepSnapshot(configurations: configurations, seeds: space.seeds, budgets: plan.budgets,
                                     trials: trials, metric: metric)
        // The steps of the default schedule's warmup, as TrainConfig sizes it for a trial of the whole sweep's length.
        let defaultSchedule = TrainConfig.defaultSchedule(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch)
        snapshot.defaultWarmupSteps = defaultSchedule.split(separator: " ").first
            .flatMap { $0.split(separator: "=").last }.flatMap { Int($0) }
        state = Mutex(snapshot)
    }

    public var snapshot: SweepSnapshot {
        var s = state.withLock { $0 }
        if !s.finished { s.elapsed = Date().timeIntervalSince(start) }
        return s
    }

    /// The folder of a trial's log (and of `commands.txt`, the warmup a metric-driven scheduler gets as a
    /// command, which `lrtop train --commands` takes to reproduce the trial).
    public static func folder(_ directory: URL, trial: TrialStatus) -> URL {
        directory.appendingPathComponent("trials/\(trial.name)")
    }

    /// Stops the sweep: running trials end at their next step (logs and checkpoints kept), nothing new starts.
    public func requestStop() {
        stopRequested.store(true, ordering: .relaxed)
        for channel in running.withLock({ Array($0.values) }) { channel.send(.stop) }
    }

    var stopping: Bool { stopRequested.load(ordering: .relaxed) || SignalFlag.received }

    /// Runs every rung; returns the final snapshot (also written to `sweep.json`).
    @discardableResult
    public func run() -> SweepSnapshot {
        var alive = Array(space.configurations.indices)
        let seeds = space.seeds.count
        for (k, _) in plan.budgets.enumerated() {
            state.withLock { $0.rung = k }
            let work = alive.flatMap { c in (0..<seeds).map { c * seeds + $0 } }
            runPool(work, rung: k)
            if stopping { break }
            let scores = state.withLock { s in alive.map { (id: $0, score: s.score(of: $0, rung: k)) } }
            let last = k == plan.budgets.count - 1
            let next = last ? alive : plan.promoted(scores)
            let dropped = alive.filter { !next.contains($0) }
            state.withLock { s in
                for c in alive {
                    for t in (c * seeds)..<((c + 1) * seeds) where s.trials[t].state != .failed {
                        s.trials[t].state = last ? .done : next.contains(c) ? .promoted : .stopped
                    }
                }
            }
            onEvent?(.rungFinished(rung: k, promoted: last ? [] : next, stopped: last ? [] : dropped))
            alive = next
            writeSummary()
            if alive.isEmpty { break }
        }
        let elapsed = Date().timeIntervalSince(start)
        state.withLock { s in
            s.finished = true
            s.elapsed = elapsed
            if stopping {
                s.interrupted = true
                for t in s.trials.indices where [.running, .promoted, .queued, .waiting].contains(s.trials[t].state) && s.trials[t].rungsDone < s.budgets.count {
                    if s.trials[t].state != .queued || s.trials[t].step > 0 { s.trials[t].state = .interrupted }
                }
            }
        }
        writeSummary()
        return snapshot
    }

    /// Trains `work` (trial indices) to rung `k`, `jobs` at a time.
    private func runPool(_ work: [Int], rung k: Int) {
        TrainerPool(count: work.count, width: jobs, name: "lrtop-trial") { [self] in runTrial(work[$0], rung: k) }
            .run(stop: { stopping })
    }

    private func runTrial(_ t: Int, rung k: Int) {
        let (trial, configuration) = state.withLock { s in
            s.trials[t].state = .running
            return (s.trials[t], s.configurations[s.trials[t].configuration])
        }
        let budget = plan.budgets[k]
        var (config, warmup) = configuration.setup(base: base, seed: trial.seed, stepsPerEpoch: stepsPerEpoch)
        // Replay's legends and --summary show the trial's name instead of "log".
        config.name = trial.name
        let dir = Self.folder(directory, trial: trial)
        var options = RunOptions()
        options.runDirectory = dir
        options.logPath = dir.appendingPathComponent("log.jsonl")
        options.headless = true
        options.threads = threads
        options.lrtopVersion = version
        options.preloadedData = data
        options.subrun = SubRun(kind: .trial, label: "\(trial.name) \(configuration.label)")
        var script: [CommandScript.Entry] = []
        if k == 0, let w = warmup { script.append(.init(step: 0, command: .warmup(w))) }
        if budget < totalSteps {
            let automatic = budget % stepsPerEpoch == 0 || (config.evalEvery.map { budget % $0 == 0 } ?? false)
            if !automatic { script.append(.init(step: budget, command: .eval)) }
            script.append(.init(step: budget, command: .stop))
        }
        if k > 0 { options.resumeCheckpoint = trial.checkpoint }
        let started = Date()
        do {
            if k == 0, let w = warmup {
                try SafeFiles.prepareFolder(dir, what: "the trial's folder", instead: "choose another --sweep-dir")
                // The same command as a script line, for `lrtop train --commands` to reproduce the trial.
                try SafeFiles.writeAtomically(Array("@0 \(Command.warmup(w))\n".utf8),
                                              to: dir.appendingPathComponent("commands.txt"), what: "the trial's commands")
            }
            options.script = CommandScript(entries: script, name: "sweep")
            options.observer = { [self] record in
                state.withLock { s in
                    switch record {
                    case .step(let r): s.trials[t].step = r.step
                    case .eval(let e): s.trials[t].evals.append(e)
                    default: break
                    }
                }
            }
            let trainer = try Trainer(config: config, options: options)
            running.withLock { $0[t] = trainer.channel }
            if stopping { trainer.channel.send(.stop) }
            let end = trainer.run()
            running.withLock { _ = $0.removeValue(forKey: t) }
            if let full = trainer.outOfSpace {
                // Every later trial would fail the same way: stop here, and say why.
                state.withLock { s in
                    s.trials[t].state = .failed
                    s.trials[t].message = full
                    s.trials[t].seconds += Date().timeIntervalSince(started)
                    if s.stoppedBy == nil { s.stoppedBy = full }
                }
                requestStop()
                onEvent?(.trialFinished(trial: t, rung: k))
                return
            }
            state.withLock { s in
                s.trials[t].checkpoint = trainer.latestCheckpointURL
                s.trials[t].seconds += Date().timeIntervalSince(started)
                if end.step >= budget && (end.reason == .completed || end.reason == .stopped) {
                    s.trials[t].rungsDone = k + 1
                    s.trials[t].state = .waiting
                } else if end.reason == .interrupted || stopping {
                    s.trials[t].state = .interrupted
                } else {
                    s.trials[t].state = .failed
                    s.trials[t].message = "\(end.reason.rawValue) at step \(end.step)" + (end.message.map { ": \($0)" } ?? "")
                }
            }
        } catch {
            state.withLock { s in
                s.trials[t].state = .failed
                s.trials[t].message = "\(error)"
            }
        }
        onEvent?(.trialFinished(trial: t, rung: k))
    }

    /// `sweep.json`: the space, the rungs, every trial's results, the best configuration.
    public func writeSummary() {
        let s = snapshot
        let summary = SweepSummary(snapshot: s, base: base, directory: directory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        guard let data = try? encoder.encode(summary) else { return }
        try? SafeFiles.writeAtomically([UInt8](data), to: directory.appendingPathComponent("sweep.json"), what: "the sweep summary")
    }
}

extension SweepConfiguration {
    /// `adamw lr=1.00e-3 warmup=1ep cosine`.
    public var label: String { "\(optimizer) lr=\(lr) warmup=\(warmup) \(schedulerText)" }
}

/// The contents of `sweep.json`.
struct SweepSummary: Encodable {
    struct Trial: Encodable {
        var name: String, seed: UInt64, state: String, rungs_done: Int, step: Int, log: String
        var val_loss: Double?, val_acc: Double?, seconds: Double, message: String?
    }
    struct RungResult: Encodable {
        var rung: Int, step: Int, val_loss_mean: Double, val_loss_spread: Double, val_acc_mean: Double, val_acc_spread: Double
    }
    struct Configuration: Encodable {
        var name: String, optimizer: String, lr: Double, warmup: String, scheduler: String, state: String
        var rung: Int?, val_loss_mean: Double?, val_loss_spread: Double?, val_acc_mean: Double?, val_acc_spread: Double?
        /// The mean and spread over the seeds at the end of each rung it finished.
        var rungs: [RungResult]
        var trials: [Trial]
    }
    var base: [String: String]
    var seeds: [UInt64]
    var budgets: [Int]
    var metric: String
    var finished: Bool
    var interrupted: Bool
    var seconds: Double
    var configurations: [Configuration]
    var best: String?

    init(snapshot s: SweepSnapshot, base: TrainConfig, directory: URL) {
        self.base = base.flattened
        seeds = s.seeds; budgets = s.budgets; metric = s.metric.rawValue; finished = s.finished
        interrupted = s.interrupted; seconds = s.elapsed
        configurations = s.configurations.indices.map { c in
            let cfg = s.configurations[c]
            let loss = s.estimate(of: c) { $0.loss }, acc = s.estimate(of: c) { $0.accuracy }
            return Configuration(name: cfg.name, optimizer: cfg.optimizer, lr: cfg.lr, warmup: cfg.warmup.description,
                                 scheduler: cfg.schedulerText, state: s.state(of: c).rawValue, rung: s.rungReached(c),
                                 val_loss_mean: loss?.mean, val_loss_spread: loss?.spread, val_acc_mean: acc?.mean,
                                 val_acc_spread: acc?.spread,
                                 rungs: s.budgets.indices.compactMap { r in
                                     s.evals(of: c, rung: r).map { e in
                                         let (lm, ls) = SweepSnapshot.meanAndSpread(e.map(\.loss))
                                         let (am, asp) = SweepSnapshot.meanAndSpread(e.map(\.accuracy))
                                         return RungResult(rung: r + 1, step: s.budgets[r], val_loss_mean: lm, val_loss_spread: ls,
                                                           val_acc_mean: am, val_acc_spread: asp)
                                     }
                                 },
                                 trials: s.trials(of: c).map { t in
                                     let last = t.rungsDone > 0 ? t.eval(at: s.budgets[t.rungsDone - 1]) : nil
                                     return Trial(name: t.name, seed: t.seed, state: t.state.rawValue, rungs_done: t.rungsDone,
                                                  step: t.step, log: "trials/\(t.name)/log.jsonl", val_loss: last?.loss,
                                                  val_acc: last?.accuracy, seconds: t.seconds, message: t.message)
                                 })
        }
        best = s.best.map { s.configurations[$0].name }
    }
}
