import Foundation
import LROptim
import LRLog

extension Trainer {
    var scriptHasPendingEntries: Bool {
        guard let script = options.script else { return false }
        return scriptCursor < script.entries.count && script.entries[scriptCursor].step <= scriptStep
    }

    /// The step scripted commands are due by: the run's step, or the branches' end once a fork's branches are done.
    var scriptStep: Int { branches?.scriptStep ?? step }

    /// Checks every line of a script against the run before it starts, so a command that could only fail later
    /// (an unknown scheduler kind, an invalid value, a group that does not exist, a step after the run's end)
    /// stops the run from starting, with its `file:line`. (On resume, lines before the resumed step are skipped:
    /// they happened; `init` sets the cursor.)
    static func validate(_ script: CommandScript, groups: [String], totalSteps: Int, stepsPerEpoch: Int,
                         config: TrainConfig) throws(TrainError) {
        var pendingFork: (line: Int, step: Int, end: Int, branches: Int)? = nil
        for entry in script.entries {
            func fail(_ message: String) -> TrainError { TrainError("\(script.name):\(entry.line): \(message)") }
            if entry.step > totalSteps {
                throw fail("'@\(entry.step) \(entry.text)' is after the run's last step (\(totalSteps)): it would never apply")
            }
            let command: Command
            do { command = try CommandParser.parse(entry.text) } catch { throw fail(error.description) }
            do {
                try checkScriptedBranches(command, at: entry.step, line: entry.line, pending: &pendingFork, groups: groups,
                                          totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch, config: config)
            } catch { throw fail(error.description) }
            switch command {
            case .lr(let group, _):
                do { _ = try groupIndices(group, names: groups) } catch { throw fail(error.description) }
            case .sched(let spec):
                let context = scheduleContext(from: entry.step, totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch,
                                              config: config)
                do { _ = try SchedulerFactory.validate(spec: spec, context: context) } catch { throw fail("\(error)") }
            default: break
            }
        }
    }

    /// Applies, at this step boundary, the scripted commands due now and everything queued from the UI.
    func applyScriptAndCommands() {
        if let script = options.script {
            while scriptCursor < script.entries.count && script.entries[scriptCursor].step <= scriptStep {
                apply(script.entries[scriptCursor].text)
                scriptCursor += 1
            }
        }
        for text in channel.takeCommands() { apply(text) }
    }

    /// Parses and applies one command. A command that cannot apply changes nothing and logs an error event.
    public func apply(_ text: String) {
        let before = optimizer.groups.map(\.lr)
        let command: Command
        do { command = try CommandParser.parse(text) } catch {
            emit(event: .error, text: text, before: before, message: error.description)
            return
        }
        do {
            try precheck(command)
            if command.isRisky(currentLRs: before) && !isBranch { saveCheckpoint(label: "before '\(text)'") }
            let note = try perform(command)
            emit(event: .command, text: text, before: before, message: note)
        } catch let error as CommandError {
            restoreLRs(before)
            emit(event: .error, text: text, before: before, message: error.description)
        } catch {
            restoreLRs(before)
            emit(event: .error, text: text, before: before, message: "\(error)")
        }
        publishStatus()
    }

    private func restoreLRs(_ lrs: [Double]) {
        for (g, lr) in zip(optimizer.groups, lrs) { g.lr = lr }
    }

    /// The group indices a command names: all groups, or the one called `name`.
    private func groupIndices(_ name: String?) throws(CommandError) -> [Int] {
        try Self.groupIndices(name, names: optimizer.groups.map(\.name))
    }

    static func groupIndices(_ name: String?, names: [String]) throws(CommandError) -> [Int] {
        guard let name else { return Array(names.indices) }
        if let i = names.firstIndex(of: name) { return [i] }
        if let i = Int(name), names.indices.contains(i) { return [i] }
        throw CommandError("no param group '\(name)': groups are \(names.joined(separator: ", "))")
    }

    /// Throws for what can be known to fail before anything changes, so a command that cannot apply does not
    /// even take its safety checkpoint.
    private func precheck(_ command: Command) throws {
        try checkBranchState(command)
        switch command {
        case .lr(let group, _): _ = try groupIndices(group)
        case .sched(let spec):
            do { _ = try SchedulerFactory.validate(spec: spec, context: remainingContext) } catch {
                throw CommandError("\(error)")
            }
        default: break
        }
    }

    /// The schedule's span for a scheduler started now: the rest of the run.
    var remainingContext: ScheduleContext {
        Self.scheduleContext(from: step, totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch, config: config)
    }

    static func scheduleContext(from step: Int, totalSteps: Int, stepsPerEpoch: Int, config: TrainConfig) -> ScheduleContext {
        let perEpoch = config.schedulerInterval == .epoch
        let remaining = perEpoch ? max(1, config.epochs - step / stepsPerEpoch) : max(1, totalSteps - step)
        return ScheduleContext(totalSteps: remaining, stepsPerEpoch: perEpoch ? 1 : stepsPerEpoch)
    }

    /// Returns a note for the event (what it did beyond the LR change), or throws a message a person can act on.
    private func perform(_ command: Command) throws -> String? {
        switch command {
        case .lr(let group, let change):
            let indices = try groupIndices(group)
            switch change {
            case .set(let v) where options.lrBeforeFirstStepIsBase && step == 0 && group == nil:
                // Group 0 gets v, the others keep their ratio to it (their lr_scale), as --lr sets them.
                let first = optimizer.groups[0].initialLR
                for g in optimizer.groups { g.initialLR = first > 0 ? v * g.initialLR / first : v }
                try lrControl.reset(optimizer: optimizer)
                return "the run's base LR before its first step: the schedule is planned from it, as --lr \(v) would"
            case .set(let v):
                lrControl.set(indices, optimizer: optimizer) { _ in v }
            case .scale(let f):
                let scaled = indices.map { optimizer.groups[$0].lr * f }
                if let bad = scaled.first(where: { !$0.isFinite || $0 > Float32.maxLR }) {
                    throw CommandError("scaling gives an LR beyond float32's range (\(bad)); nothing changed")
                }
                lrControl.set(indices, optimizer: optimizer) { $0 * f }
            case .hold:
                lrControl.hold(indices)
                return "held until 'lr release'"
            case .release:
                lrControl.release(indices, optimizer: optimizer)
                return "back to the schedule as planned"
            case .reset:
                if group == nil {
                    try lrControl.reset(optimizer: optimizer)
                    return "base LR restored, schedule restarted"
                }
                lrControl.set(indices, optimizer: optimizer) { _ in optimizer.groups[indices[0]].initialLR }
                return "base LR restored for this group; the schedule continues from it"
            }
            return nil
        case .sched(let spec):
            do {
                try lrControl.switchScheduler(to: spec, optimizer: optimizer, context: remainingContext)
            } catch {
                throw CommandError("\(error)")
            }
            return "now \(lrControl.spec), continuing from the current LR"
        case .warmup(let n):
            lrControl.startWarmup(steps: n)
            return "ramping the LR up over \(n) steps"
        case .pause:
            guard !paused else { throw CommandError("already paused: 'resume' continues, 'step' takes one step") }
            pause(reason: nil)
            return nil
        case .resume:
            guard paused else { throw CommandError("not paused") }
            paused = false
            pausedByGuard = nil
            stepsWhilePaused = 0
            channel.update { $0.message = nil }
            return nil
        case .step(let n):
            guard paused else { throw CommandError("'step' works while paused: 'pause' first") }
            stepsWhilePaused += n
            return nil
        case .stop:
            stopRequested = .stopped
            return nil
        case .checkpoint:
            guard let entry = saveCheckpoint(label: "manual") else {
                throw CommandError("checkpoint failed (see the previous event)")
            }
            return entry.url.map { "saved \($0.path)" } ?? "kept in memory"
        case .rollback:
            guard let target = checkpoints.latest else {
                throw CommandError("no checkpoint to roll back to: 'ckpt' takes one, --checkpoint-every takes them regularly")
            }
            let from = step
            try restore(target.state, tensors: target.tensors)
            return "rolled back from step \(from) to step \(target.state.step) (\(target.state.label))"
        case .eval:
            evaluate()
            return nil
        case .fork(let fork): return try startFork(fork)
        case .adopt(let k): return try adopt(k)
        case .drop: return dropBranches()
        case .findLR(let settings):
            let result = try runRangeTest(settings)
            return (result.folder.map { $0 + ": " } ?? "") + result.curve.summary
        }
    }
}
