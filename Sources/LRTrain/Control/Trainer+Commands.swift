import Foundation
import LROptim
import LRLog
import LRCommand

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
            let command = entry.command
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

    /// Commands from the channel one step boundary applies at most; the rest wait for the next ones, so a flood
    /// (20,000 `lr *1`, 300 `ckpt`) delays training by a bounded amount of work per step instead of stalling it.
    static let commandsPerBoundary = 32

    /// Applies, at this step boundary, the scripted commands due now and up to `commandsPerBoundary` of those
    /// queued from the UI (the run's own script is checked before the run and applies in full).
    func applyScriptAndCommands() {
        boundary &+= 1
        if let script = options.script {
            while scriptCursor < script.entries.count && script.entries[scriptCursor].step <= scriptStep {
                let entry = script.entries[scriptCursor]
                apply(entry.command, text: entry.text)
                scriptCursor += 1
            }
        }
        let (commands, refused) = channel.takeCommands(limit: Self.commandsPerBoundary)
        if !commands.isEmpty { channel.activity.enter(.commands, step: step) }
        answerRefused(refused)
        for issued in commands {
            let event: EventRecord
            switch issued.parsed {
            case .success(let command): event = apply(command, text: issued.text)
            case .failure(let error):
                event = emit(event: .error, text: issued.text, message: error.description)
            }
            channel.reply(to: issued.id, with: event)
        }
    }

    /// Logs one error event counting the commands the channel refused (its queue was full), and answers each of
    /// them with it.
    private func answerRefused(_ ids: [ClosedRange<Int>]) {
        guard !ids.isEmpty else { return }
        let n = ids.reduce(0) { $0 + $1.count }
        let event = emit(event: .error, text: "commands", message: "\(n) command\(n == 1 ? "" : "s") refused: "
                         + "\(TrainerChannel.inboxLimit) were already waiting for the trainer")
        channel.reply(toRefused: ids, with: event)
    }

    /// At the run's end: the commands still waiting are not applied; one event says how many, and answers each.
    func answerUnappliedCommands() {
        let (waiting, refused) = channel.takeCommands(limit: TrainerChannel.inboxLimit)
        answerRefused(refused)
        guard !waiting.isEmpty else { return }
        let n = waiting.count
        let event = emit(event: .info, text: "commands",
                         message: "\(n) command\(n == 1 ? "" : "s") sent were not applied: the run ended first")
        channel.reply(to: waiting.map(\.id), with: event)
    }

    /// Applies one command; returns the event that logs it. A command that cannot apply changes nothing and logs
    /// an error event. `text` is what the log keeps (default: the command as the language writes it).
    @discardableResult
    public func apply(_ command: Command, text: String? = nil) -> EventRecord {
        let text = text ?? command.description
        let before = optimizer.groups.map(\.lr)
        defer { publishStatus() }
        do {
            try precheck(command)
            // One automatic checkpoint per boundary at most, and none when the state is saved already: `rollback`
            // then undoes the whole burst of risky commands sent together.
            if command.isRisky(currentLRs: before) && !isBranch && !checkpointIsCurrent && riskCheckpointBoundary != boundary {
                riskCheckpointBoundary = boundary
                saveCheckpoint(label: "before '\(text)'")
            }
            let outcome = try perform(command)
            if case .checkpoint = command {} else { checkpointIsCurrent = false }
            return emit(event: .command, text: text, command: command, result: outcome.result, before: before,
                        message: outcome.note)
        } catch let error as CommandError {
            restoreLRs(before)
            return emit(event: .error, text: text, command: command, before: before, message: error.description)
        } catch {
            restoreLRs(before)
            return emit(event: .error, text: text, command: command, before: before, message: "\(error)")
        }
    }

    private func restoreLRs(_ lrs: [Double]) {
        for (g, lr) in zip(optimizer.groups, lrs) { g.lr = lr }
    }

    /// The group indices a command names: all groups, or the one called `name`.
    private func groupIndices(_ name: String?) throws(CommandError) -> [Int] {
        try Self.groupIndices(name, names: optimizer.groups.map(\.name))
    }

    public static func groupIndices(_ name: String?, names: [String]) throws(CommandError) -> [Int] {
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
        case .lr(let group, let change):
            let indices = try groupIndices(group)
            if !(options.lrBeforeFirstStepIsBase && step == 0 && group == nil) {
                try Self.checkOverride(change, groups: indices, control: lrControl, step: step,
                                       perEpoch: config.schedulerInterval == .epoch)
            }
        case .sched(let spec):
            do { _ = try SchedulerFactory.validate(spec: spec, context: remainingContext) } catch {
                throw CommandError("\(error)")
            }
        case .findLR(let settings):
            // A value made by a program rather than the parser is held to the language's rules too.
            do { try settings.check() } catch { throw CommandError(error.description) }
        default: break
        }
    }

    /// `lr X` and `lr *F` where something else goes on writing the LR would leave the status saying `override`
    /// while the LR trained is another: refused with the reason and what does hold (docs/steering.md).
    /// - A `warmup N` re-warm scales the LR the optimizer uses, held groups too, until it ends.
    /// - A schedule that computes the LR from its step count (onecycle, cyclic, warm_restarts) would undo it at its
    ///   next step; the schedule's own ramp (`warmup`, `linear`) would raise it with the ramp, and inside a `->`
    ///   sequence the next part restarts from its base LR at the milestone. Unless every group it names is held (a
    ///   held group keeps what it is given). `step`: the optimizer steps taken; `perEpoch`: the schedule steps once
    ///   an epoch.
    public static func checkOverride(_ change: Command.LRChange, groups: [Int], control: LRControl, step: Int,
                                     perEpoch: Bool = false) throws(CommandError) {
        switch change {
        case .set, .scale: break
        case .hold, .release, .reset: return
        }
        if control.warmupLeft > 0 {
            let end = step + control.warmupLeft
            throw CommandError("the 'warmup \(control.warmupTotal)' ramp scales the LR the optimizer uses until step \(end), "
                + "so this LR would train at a fraction of itself: set it at step \(end) (a script's '@\(end) lr ...'), "
                + "when the ramp is over")
        }
        guard groups.contains(where: { !control.held[$0] }) else { return }
        if let kind = control.absoluteKind {
            throw CommandError("\(kind) computes the LR from its step count, so this LR would last one step: "
                + "'lr hold' first pins the LR (then 'lr X' holds until 'lr release'), or 'sched' a schedule from the LR you want")
        }
        if let ramp = control.scheduleRamp {
            let until = perEpoch ? "\(ramp.stepsLeft) more epoch\(ramp.stepsLeft == 1 ? "" : "s")"
                : "until step \(step + ramp.stepsLeft)"
            throw CommandError("the schedule's \(ramp.kind) ramp writes the LR \(perEpoch ? "for " : "")\(until), so this LR "
                + "would not hold: 'lr hold' first pins the LR (then 'lr X' holds until 'lr release'), or wait \(until) "
                + "and set it then: the schedule goes on from it")
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

    /// What a command did beyond the LR change: a note for the event's message and its outcome as data.
    struct Outcome {
        var note: String?
        var result: EventResult?
        init(_ note: String? = nil, result: EventResult? = nil) { self.note = note; self.result = result }
    }

    /// Carries out a command, or throws a message a person can act on.
    private func perform(_ command: Command) throws -> Outcome {
        switch command {
        case .lr(let group, let change):
            let indices = try groupIndices(group)
            switch change {
            case .set(let v) where options.lrBeforeFirstStepIsBase && step == 0 && group == nil:
                // Group 0 gets v, the others keep their ratio to it (their lr_scale), as --lr sets them.
                let first = optimizer.groups[0].initialLR
                for g in optimizer.groups { g.initialLR = first > 0 ? v * g.initialLR / first : v }
                try lrControl.reset(optimizer: optimizer)
                return Outcome("the run's base LR before its first step: the schedule is planned from it, as --lr \(v) would")
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
                return Outcome("held until 'lr release'")
            case .release:
                lrControl.release(indices, optimizer: optimizer)
                return Outcome("back to the schedule as planned")
            case .reset:
                if group == nil {
                    try lrControl.reset(optimizer: optimizer)
                    return Outcome("base LR restored, schedule restarted")
                }
                lrControl.set(indices, optimizer: optimizer) { _ in optimizer.groups[indices[0]].initialLR }
                return Outcome("base LR restored for this group; the schedule continues from it")
            }
            return Outcome()
        case .sched(let spec):
            let built: String
            do {
                built = try SchedulerFactory.validate(spec: spec, context: remainingContext)
                try lrControl.switchScheduler(to: spec, optimizer: optimizer, context: remainingContext)
            } catch {
                throw CommandError("\(error)")
            }
            // What was built, lengths filled in for the steps left (`cosine` 40 steps into 100 is `T_max=60`): the
            // answer, the event and the status all say the same schedule.
            let left = remainingContext.totalSteps
            let unit = config.schedulerInterval == .epoch ? "epoch" : "step"
            return Outcome("now \(built) (over the \(left) \(unit)\(left == 1 ? "" : "s") left), continuing from the current LR",
                           result: EventResult(scheduler: built))
        case .warmup(let n):
            lrControl.startWarmup(steps: n)
            return Outcome("ramping the LR up over \(n) steps")
        case .pause:
            guard !paused else { throw CommandError("already paused: 'resume' continues, 'step' takes one step") }
            pause(reason: nil)
            return Outcome()
        case .resume:
            guard paused else { throw CommandError("not paused") }
            paused = false
            pausedByGuard = nil
            stepsWhilePaused = 0
            channel.update { $0.message = nil }
            return Outcome()
        case .step(let n):
            guard paused else { throw CommandError("'step' works while paused: 'pause' first") }
            stepsWhilePaused += n
            return Outcome()
        case .stop:
            stopRequested = .stopped
            return Outcome()
        case .checkpoint:
            // Repeated `ckpt` with nothing changed in between are one checkpoint, not one file each.
            if checkpointIsCurrent, let latest = checkpoints.latest {
                return Outcome("step \(step) is already saved in \(latest.url?.path ?? "the memory ring") (the same state: not written again)")
            }
            guard let entry = saveCheckpoint(label: "manual") else {
                throw CommandError("checkpoint failed (see the previous event)")
            }
            return Outcome(entry.url.map { "saved \($0.path)" } ?? "kept in memory")
        case .rollback:
            guard let target = checkpoints.latest else {
                throw CommandError("no checkpoint to roll back to: 'ckpt' takes one, --checkpoint-every takes them regularly")
            }
            let from = step
            try restore(target.state, tensors: target.tensors)
            return Outcome("rolled back from step \(from) to step \(target.state.step) (\(target.state.label))",
                           result: EventResult(rolledBackTo: target.state.step))
        case .eval:
            evaluate()
            return Outcome()
        case .fork(let fork): return try startFork(fork)
        case .adopt(let k): return Outcome(try adopt(k))
        case .drop: return Outcome(dropBranches())
        case .pace(let change):
            return Outcome(try setPace(change))
        case .findLR(let settings):
            let test = try runRangeTest(settings)
            let suggestions = test.curve.suggestions.named.map { EventResult.Suggestion(name: $0.name, lr: $0.lr) }
            return Outcome((test.folder.map { $0 + ": " } ?? "") + test.curve.summary,
                           result: EventResult(subruns: test.folder.map { [$0] }, suggestions: suggestions))
        }
    }
}
