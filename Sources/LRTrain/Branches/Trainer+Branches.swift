import Foundation
import LROptim
import LRLog
import LRTensor
import LRCommand

/// `fork`, `adopt K` and `drop`: "what if" branches trained from the run's current state while the run waits.
extension Trainer {
    /// While branches exist the run only takes `adopt`, `drop` and `stop`; without them `adopt`/`drop` have
    /// nothing to act on, and a fork is checked whole (groups, scheduler specs, steps left) before anything starts.
    func checkBranchState(_ command: Command) throws(CommandError) {
        if let session = branches {
            switch command {
            case .adopt, .drop, .stop, .pace: return
            default:
                throw CommandError("the run waits at step \(session.fromStep) for its branches: 'adopt K' or 'drop' first")
            }
        }
        switch command {
        case .adopt: throw CommandError("no branches to adopt: 'fork' starts some, e.g. 'fork lr=1e-3,1e-4 steps=300'")
        case .drop: throw CommandError("no branches to drop: 'fork' starts some, e.g. 'fork lr=1e-3,1e-4 steps=300'")
        case .fork(let fork):
            try Self.checkFork(fork, at: step, groups: optimizer.groups.map(\.name), totalSteps: totalSteps,
                               stepsPerEpoch: stepsPerEpoch, config: config)
        default: return
        }
    }

    static func checkFork(_ fork: Command.Fork, at step: Int, groups: [String], totalSteps: Int, stepsPerEpoch: Int,
                          config: TrainConfig) throws(CommandError) {
        let left = totalSteps - step
        guard left > 0 else { throw CommandError("the run has no steps left to branch from step \(step)") }
        guard fork.steps <= left else {
            throw CommandError("the branches would train past the run's last step (\(totalSteps)): give steps=\(left) or fewer")
        }
        let context = scheduleContext(from: step, totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch, config: config)
        for (i, branch) in fork.branches.enumerated() {
            for command in branch.commands {
                switch command {
                case .lr(let group, _):
                    do { _ = try groupIndices(group, names: groups) } catch {
                        throw CommandError("branch \(i + 1): \(error.description)")
                    }
                case .sched(let spec):
                    do { _ = try SchedulerFactory.validate(spec: spec, context: context) } catch {
                        throw CommandError("branch \(i + 1): \(error)")
                    }
                default: break
                }
            }
        }
    }

    /// A script's forks, adopts and drops in order: nothing is scripted while a fork's branches train (the run
    /// waits at the fork point), the first command after them adopts, drops or stops, and `adopt`/`drop` follow a
    /// fork.
    static func checkScriptedBranches(_ command: Command, at step: Int, line: Int,
                                      pending: inout (line: Int, step: Int, end: Int, branches: Int)?,
                                      groups: [String], totalSteps: Int, stepsPerEpoch: Int,
                                      config: TrainConfig) throws(CommandError) {
        if let fork = pending {
            guard step >= fork.end else {
                throw CommandError("the run waits at step \(fork.step) while the branches of line \(fork.line)'s fork "
                    + "train to step \(fork.end): a command before @\(fork.end) cannot apply; move it to @\(fork.end) "
                    + "after 'adopt K' or 'drop'")
            }
            switch command {
            case .adopt(let k):
                guard k <= fork.branches else {
                    throw CommandError("no branch \(k): the fork of line \(fork.line) has branches 1 to \(fork.branches)")
                }
                pending = nil
            case .drop: pending = nil
            case .stop: break
            default:
                throw CommandError("the run waits at the fork of line \(fork.line) until 'adopt K' or 'drop': "
                    + "script one before this line")
            }
            return
        }
        switch command {
        case .fork(let fork):
            try checkFork(fork, at: step, groups: groups, totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch,
                          config: config)
            pending = (line, step, step + fork.steps, fork.branches.count)
        case .adopt, .drop:
            throw CommandError("no fork before it in the script: 'adopt K' and 'drop' follow a 'fork'")
        default: break
        }
    }

    // MARK: the commands

    func startFork(_ fork: Command.Fork) throws -> Outcome {
        let (state, tensors) = snapshot(label: "fork at step \(step)")
        var urls: [URL]? = nil
        if let logURL {
            let dir = logURL.deletingLastPathComponent().appendingPathComponent("subruns")
            urls = Self.freeBranchNames(in: dir, step: step, count: fork.branches.count).map {
                dir.appendingPathComponent($0).appendingPathComponent("log.jsonl")
            }
        }
        let parentLog = logURL.map { "../../" + $0.lastPathComponent }
        var runs: [BranchRun] = []
        for (i, branch) in fork.branches.enumerated() {
            runs.append(try BranchRun(number: i + 1, branch: branch, steps: fork.steps, parent: self, state: state,
                                      tensors: tensors, logURL: urls?[i], parentLog: parentLog))
        }
        let session = BranchSession(fork: fork, fromStep: step, branches: runs, folders: runs.compactMap(\.folder))
        branches = session
        let count = runs.count == 1 ? "1 branch" : "\(runs.count) branches"
        let list = runs.map { "\($0.number) \($0.folder ?? "(not logged)") (\($0.branch.label))" }
        channel.update { $0.message = "branches \(session.progress)" }
        let jobs = min(fork.jobs, runs.count)
        let threads = BLAS.threads
        let note = jobs > 1 && threads > 1
            ? " (each on one BLAS thread, the run uses \(threads): their last bits can differ from one at a time)" : ""
        return Outcome("\(count) of \(fork.steps) steps from step \(step), \(jobs) at a time\(note): "
                       + list.joined(separator: ", ") + "; the run waits here for 'adopt K' or 'drop'",
                       result: session.folders.map { EventResult(subruns: $0) })
    }

    func adopt(_ k: Int) throws -> String {
        guard let session = branches else { throw CommandError("no branches to adopt") }
        guard session.branches.indices.contains(k - 1) else {
            throw CommandError("no branch \(k): this fork has branches 1 to \(session.branches.count)")
        }
        let run = session.branches[k - 1]
        guard let outcome = run.outcome else {
            throw CommandError("branch \(k) has not finished (step \(run.step) of \(session.fromStep + session.fork.steps)): "
                + "wait for it, or 'drop'")
        }
        guard outcome.reason == .completed else {
            throw CommandError("branch \(k) \(outcome.reason == .diverged ? "diverged" : "did not finish")"
                + (outcome.message.map { " (\($0))" } ?? "") + ": adopt another branch, or 'drop'")
        }
        report(session)
        session.cancel(because: "branch \(k) was adopted")
        try restore(outcome.state, tensors: outcome.tensors)
        lastEval = outcome.lastEval
        lastGradNorm = outcome.lastGradNorm
        branches = nil
        // The branch's records become the run's: its log and the UI go on from the fork point along the branch.
        var records = outcome.records
        if let url = run.logURL {
            do {
                records = try RunLogReader.readRecords(at: url).records.filter {
                    switch $0 { case .header, .end: false; default: true }
                }
            } catch {
                emit(event: .error, text: "adopt \(k)", command: .adopt(k), message: "\(url.path) could not be read back (\(error)): "
                     + "this log lacks branch \(k)'s steps \(session.fromStep + 1)-\(step); the branch's log has them")
                records = []
            }
        }
        for r in records { record(r) }
        channel.update { $0.message = nil }
        return "continuing from branch \(k) (\(run.branch.label)) at step \(step)"
            + (run.folder.map { ": its records from step \(session.fromStep + 1) (\($0)) are now this run's" } ?? "")
            + "; " + Self.figures(outcome)
    }

    func dropBranches() -> String {
        guard let session = branches else { return "no branches" }
        report(session)
        session.cancel(because: "the branches were dropped")
        branches = nil
        channel.update { $0.message = nil }
        let kept = session.folders.map { $0.isEmpty ? "" : "; the branches stay logged in " + $0.joined(separator: ", ") } ?? ""
        return "back at step \(step) as before the fork" + kept
    }

    // MARK: the loop

    /// One turn of the run's loop while branches exist: start and collect them, say how far they are. Returns an
    /// end reason when a headless run has nothing left that could adopt or drop them.
    func tendBranches() -> (EndReason, String?)? {
        guard let session = branches else { return nil }
        let done = session.pump()
        if done { report(session) }
        let text = done
            ? "branches done: adopt K or drop"
            : "branches \(session.progress)"
        let now = Date().timeIntervalSinceReferenceDate
        if channel.status.message != text && (done || now - session.progressShownAt > 0.2) {
            session.progressShownAt = now
            channel.update { $0.message = text }
            publishStatus()
        }
        if done && options.headless && !scriptHasPendingEntries && !channel.hasCommands {
            return (.stopped, "the branches from step \(session.fromStep) are done and wait for 'adopt K' or 'drop', "
                + "with no scripted command left to choose (headless run)")
        }
        Thread.sleep(forTimeInterval: 0.005)
        return nil
    }

    /// Logs the branches' results once, when the last one ends (before `adopt`/`drop` act on them).
    func report(_ session: BranchSession) {
        guard session.isDone, !session.reported else { return }
        session.reported = true
        emit(event: .info, text: "fork", message: "branches from step \(session.fromStep) done: "
             + session.branches.map { "\($0.number) \($0.branch.label): " + ($0.outcome.map(Self.figures) ?? "?") }
                .joined(separator: "; ") + "; 'adopt K' continues from one, 'drop' goes back")
    }

    /// The run ends with branches still there: those training stop (their logs say why); the run stays at the
    /// fork point.
    func endBranches(because why: String) {
        guard let session = branches else { return }
        session.cancel(because: why)
        branches = nil
        emit(event: .info, text: "fork", message: "the run ended at the fork point (step \(step)) without adopting a branch")
    }

    /// "last batch loss 0.412, val loss 0.451, acc 84.1%, 52 steps/s", or how it ended early. The loss is the raw
    /// loss of the branch's last batch, and says so: the branches table shows a smoothed one.
    static func figures(_ o: BranchOutcome) -> String {
        var parts: [String] = []
        if o.reason != .completed { parts.append(o.reason.rawValue + (o.message.map { " (\($0))" } ?? "")) }
        if let l = o.lastLoss { parts.append(String(format: "last batch loss %.4g", l)) }
        if let e = o.lastEval { parts.append(String(format: "val loss %.4g, acc %.1f%%", e.loss, e.accuracy * 100)) }
        if o.steps > 0 { parts.append(String(format: "%.0f steps/s", o.stepsPerSecond)) }
        return parts.joined(separator: ", ")
    }

    /// `fork-300-1` ... `fork-300-K`, or with a `-2`, `-3` ... suffix when an earlier fork at this step took those.
    static func freeBranchNames(in dir: URL, step: Int, count: Int) -> [String] {
        var suffix = ""
        var n = 1
        while true {
            let names = (1...count).map { "fork-\(step)-\($0)\(suffix)" }
            if !names.contains(where: { FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).path) }) {
                return names
            }
            n += 1
            suffix = "-\(n)"
        }
    }
}
