import Foundation
import Synchronization
import LRLog
import LRTensor

/// One run of `lrtop compare`: a named configuration with one seed, and where its log goes.
public struct CompareJob: Sendable {
    public let name: String
    public let seed: Int
    public let config: TrainConfig
    public let log: URL
    public init(name: String, seed: Int, config: TrainConfig, log: URL) {
        self.name = name; self.seed = seed; self.config = config; self.log = log
    }
}

/// What one run of `lrtop compare` reached.
public struct CompareResult: Sendable {
    public let job: CompareJob
    public var finalAccuracy = 0.0
    /// Mean training loss over the last epoch's steps (as the PyTorch reference reports it).
    public var finalTrainLoss = Double.nan
    /// 1-based epoch at whose end the test accuracy first reached the target; nil if never.
    public var epochsToTarget: Int? = nil
    public var seconds = 0.0
    public var error: String? = nil
}

/// Trains the guide's comparison: the jobs in a `TrainerPool`, `parallel` at a time, each with one BLAS thread (two
/// small runs side by side use two cores better than one run with two BLAS threads).
public struct CompareRunner: Sendable {
    public let jobs: [CompareJob]
    public let parallel: Int
    public let target: Double
    public let version: String
    /// Called on each run's thread with its index and every record (the progress view).
    public let observe: @Sendable (Int, RunRecord) -> Void

    public init(jobs: [CompareJob], parallel: Int, target: Double, version: String,
                observe: @escaping @Sendable (Int, RunRecord) -> Void) {
        self.jobs = jobs; self.parallel = parallel; self.target = target; self.version = version; self.observe = observe
    }

    /// Runs every job (none starts after a signal); returns the results of those that ran, in job order.
    public func run() -> [CompareResult] {
        BLAS.setThreads(1)
        let results = Mutex<[CompareResult?]>(Array(repeating: nil, count: jobs.count))
        TrainerPool(count: jobs.count, width: parallel, name: "lrtop-compare") { i in
            let result = runOne(jobs[i], index: i)
            results.withLock { $0[i] = result }
        }.run(stop: { SignalFlag.received })
        return results.withLock { $0.compactMap { $0 } }
    }

    private func runOne(_ job: CompareJob, index: Int) -> CompareResult {
        var result = CompareResult(job: job)
        var options = RunOptions()
        options.runDirectory = job.log.deletingLastPathComponent()
        options.logPath = job.log
        options.lrtopVersion = version
        let tracker = EpochTracker(stepsPerEpochHint: 1, target: target)
        options.observer = { record in
            tracker.handle(record)
            observe(index, record)
        }
        let start = Date()
        do {
            let trainer = try Trainer(config: job.config, options: options)
            tracker.stepsPerEpoch = trainer.stepsPerEpoch
            let end = trainer.run()
            result.finalAccuracy = end.finalAccuracy ?? 0
            result.finalTrainLoss = tracker.lastEpochMeanLoss
            result.epochsToTarget = tracker.epochsToTarget
            if end.reason != .completed { result.error = "run ended early: \(end.reason.rawValue) \(end.message ?? "")" }
        } catch {
            result.error = "\(error)"
        }
        result.seconds = Date().timeIntervalSince(start)
        return result
    }
}

final class EpochTracker: @unchecked Sendable {
    var stepsPerEpoch: Int
    let target: Double
    private var epochLossSum = 0.0
    private var epochSteps = 0
    private(set) var lastEpochMeanLoss = Double.nan
    private(set) var epochsToTarget: Int? = nil

    init(stepsPerEpochHint: Int, target: Double) { stepsPerEpoch = stepsPerEpochHint; self.target = target }

    func handle(_ record: RunRecord) {
        switch record {
        case .step(let s):
            epochLossSum += s.loss
            epochSteps += 1
            if s.step % stepsPerEpoch == 0 {
                lastEpochMeanLoss = epochLossSum / Double(epochSteps)
                epochLossSum = 0
                epochSteps = 0
            }
        case .eval(let e):
            if epochsToTarget == nil && e.accuracy >= target && e.step % stepsPerEpoch == 0 {
                epochsToTarget = e.step / stepsPerEpoch
            }
        default: break
        }
    }
}
