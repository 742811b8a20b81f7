import Foundation
import Synchronization
import LRLog
import LRTensor
import LRCommand

/// The branches of one `fork`: each trains on its own `Trainer` (own weights, optimizer, schedule and batcher,
/// restored from the parent's in-memory snapshot at the fork point) in a `TrainerPool`, `jobs` at a time.
/// The parent does not step while the session exists: it waits at the fork point until `adopt K` or `drop`.
final class BranchSession {
    let fork: Command.Fork
    let fromStep: Int
    let branches: [BranchRun]
    /// Sub-run folder names relative to the run log's folder (`subruns/fork-300-1`), nil when nothing is written.
    let folders: [String]?
    private let pool: TrainerPool
    /// Whether the "branches done" summary was logged.
    var reported = false

    init(fork: Command.Fork, fromStep: Int, branches: [BranchRun], folders: [String]?) {
        self.fork = fork; self.fromStep = fromStep; self.branches = branches; self.folders = folders
        pool = TrainerPool(count: branches.count, width: fork.jobs, name: "lrtop-branch") { branches[$0].train() }
    }

    /// OpenBLAS's thread count before branches trained side by side (each then multiplies on one thread: several
    /// callers each asking for every core slow all of them down).
    private var blasThreads: Int? = nil

    /// Starts branches while fewer than `jobs` train; returns whether every branch has ended.
    func pump() -> Bool {
        if pool.started == 0 && min(fork.jobs, branches.count) > 1 && blasThreads == nil {
            blasThreads = BLAS.threads
            BLAS.setThreads(1)
        }
        defer { if isDone { restoreThreads() } }
        pool.fill()
        return isDone
    }

    var isDone: Bool { pool.isDone && branches.allSatisfy { $0.outcome != nil } }

    /// Asks every branch still training (or not started) to stop, and waits for them: their logs end "stopped".
    func cancel(because why: String) {
        for i in pool.close() { branches[i].skip(because: why) }
        for b in branches { b.cancel(because: why) }
        for b in branches { b.wait() }
        restoreThreads()
    }

    private func restoreThreads() {
        if let n = blasThreads { BLAS.setThreads(n) }
        blasThreads = nil
    }

    /// The step the parent's `--commands` script has reached: the fork point while branches train, the branches'
    /// end once they are done and reported (so `@400 adopt 1` after `@300 fork ... steps=100` applies when they finish).
    var scriptStep: Int { reported ? fromStep + fork.steps : fromStep }

    /// When the status line last said how far the branches are (it changes every step; the UI reads it a few
    /// times a second).
    var progressShownAt = 0.0

    /// "1/3 done, b2 at 340/400" (the run's status line: short, the table has the rest).
    var progress: String {
        let done = branches.filter { $0.outcome != nil }.count
        let training = branches.filter { $0.isTraining }
        let at = training.map { "b\($0.number) at \($0.step)/\(fromStep + fork.steps)" }
        return "\(done)/\(branches.count) done" + (at.isEmpty ? "" : ", " + at.joined(separator: ", "))
    }
}

/// How a branch ended, with its state at the end (to adopt) and the figures of its row in the table.
struct BranchOutcome {
    var reason: EndReason
    var message: String?
    var state: CheckpointState
    var tensors: [String: [Float]]
    var lastLoss: Double?
    var lastEval: EvalRecord?
    var lastGradNorm: Double?
    var steps: Int
    var stepsPerSecond: Double
    /// The branch's records after its header (its commands, steps, evaluations), in order, when it has no log
    /// (else they are read back from it): adopting the branch makes them the run's.
    var records: [RunRecord]
}

/// One branch: its trainer, its thread, and the outcome once it ends.
final class BranchRun: @unchecked Sendable {
    let number: Int
    let branch: Command.Fork.Branch
    let steps: Int
    let folder: String?
    let logURL: URL?
    private let trainer: Trainer
    let subrun: SubRun
    private let startState: CheckpointState
    private let startTensors: [String: [Float]]
    private let collected = BranchRecords()
    private let cancelled = Atomic<Bool>(false)
    private let cancelReason = Mutex<String>("")
    private let finished = Mutex<BranchOutcome?>(nil)
    private let currentStep: Atomic<Int>
    private let trainingFlag = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    /// Trained or skipped: a branch is never both.
    private let began = Atomic<Bool>(false)
    private let waited = Atomic<Bool>(false)

    init(number: Int, branch: Command.Fork.Branch, steps: Int, parent: Trainer, state: CheckpointState,
         tensors: [String: [Float]], logURL: URL?, parentLog: String?) throws {
        self.number = number
        self.branch = branch
        self.steps = steps
        self.folder = logURL.map { "subruns/" + $0.deletingLastPathComponent().lastPathComponent }
        let collected = self.collected
        let log: RunLogWriter?
        do { log = try logURL.map { try RunLogWriter(url: $0) } } catch {
            throw CommandError("branch \(number): \(error)")
        }
        // Records are kept in memory only when there is no log to read them back from on `adopt`.
        let keep = logURL == nil
        subrun = SubRun(kind: .branch, label: branch.label, fromStep: state.step, parent: parentLog)
        trainer = try Trainer(branchOf: parent, subrun: subrun, log: log) { record in
            guard keep else { return }
            switch record {
            case .header, .end: break
            default: collected.records.withLock { $0.append(record) }
            }
        }
        self.logURL = logURL
        try trainer.restore(state, tensors: tensors)
        // On disk before the fork's event: a UI that sees the event finds the branch's log and its label.
        trainer.writeHeader()
        trainer.flushLog()
        startState = state
        startTensors = tensors
        currentStep = Atomic(state.step)
    }

    var outcome: BranchOutcome? { finished.withLock { $0 } }
    var step: Int { currentStep.load(ordering: .relaxed) }
    var isTraining: Bool { trainingFlag.load(ordering: .relaxed) }

    /// Trains the branch on the calling thread (the session's pool gives it one).
    func train() {
        began.store(true, ordering: .relaxed)
        trainingFlag.store(true, ordering: .relaxed)
        let outcome = trainToEnd()
        finished.withLock { $0 = outcome }
        trainingFlag.store(false, ordering: .relaxed)
        done.signal()
    }

    func cancel(because why: String) {
        cancelReason.withLock { $0 = why }
        cancelled.store(true, ordering: .relaxed)
    }

    /// A branch that never started: its log says so, and it ends at the fork point.
    func skip(because why: String) {
        guard !began.exchange(true, ordering: .relaxed) else { return }
        let end = trainer.finish(reason: .stopped, message: "not trained: \(why)")
        finished.withLock {
            $0 = BranchOutcome(reason: .stopped, message: end.message, state: startState, tensors: startTensors,
                               lastLoss: nil, lastEval: nil, lastGradNorm: nil, steps: 0, stepsPerSecond: 0,
                               records: [])
        }
        done.signal()
    }

    /// Waits until it has ended: trained by the pool, or skipped (the session closes the pool first, so every
    /// branch is one or the other).
    func wait() {
        guard !waited.exchange(true, ordering: .relaxed) else { return }
        done.wait()
    }

    private func trainToEnd() -> BranchOutcome {
        let t = trainer
        for (command, text) in zip(branch.commands, branch.texts) { t.apply(command, text: text) }
        let begin = DispatchTime.now().uptimeNanoseconds
        var reason = EndReason.completed
        var message: String? = nil
        var taken = 0
        while taken < steps {
            if cancelled.load(ordering: .relaxed) {
                reason = .stopped
                message = "stopped at step \(t.step): " + cancelReason.withLock { $0 }
                break
            }
            if let tripped = t.trainOneStep() {
                reason = tripped
                message = t.channel.status.message
                break
            }
            taken += 1
            currentStep.store(t.step, ordering: .relaxed)
            if t.paused {
                // The guard paused it: nobody resumes a branch, so it ends here, diverged.
                reason = .diverged
                message = t.pausedByGuard ?? "the divergence guard paused it"
                break
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e9
        if reason != .diverged && t.options.evaluate && t.lastEval?.step != t.step { t.evaluate() }
        let (state, tensors) = t.snapshot(label: "branch \(number) end")
        let end = t.finish(reason: reason, message: message)
        return BranchOutcome(reason: reason, message: end.message, state: state, tensors: tensors,
                             lastLoss: t.lastLoss, lastEval: t.lastEval, lastGradNorm: t.lastGradNorm, steps: taken,
                             stepsPerSecond: seconds > 0 ? Double(taken) / seconds : 0,
                             records: collected.records.withLock { $0 })
    }
}

/// A branch's records as its trainer writes them (the observer runs on the branch's thread).
final class BranchRecords: Sendable {
    let records = Mutex<[RunRecord]>([])
}
