import Testing
import Foundation
import LRTrain
import LRLog
import LRCommand

/// Runs a short training on the built-in spirals data, collecting every record.
func trainSpirals(steps: Int, optimizer: String = "sgd", lr: Double = 0.1, scheduler: String? = "constant",
                  script: String? = nil, configure: (inout TrainConfig) -> Void = { _ in },
                  options: (inout RunOptions) -> Void = { _ in },
                  before: (TrainerChannel) -> Void = { _ in }) throws -> (records: [RunRecord], end: EndRecord, trainer: Trainer) {
    var config = TrainConfig()
    config.data = "synthetic:spirals"
    config.batchSize = 32
    config.hidden = [32]
    config.epochs = 100
    config.maxSteps = steps
    config.optimizer = optimizer
    config.lr = lr
    config.scheduler = scheduler
    configure(&config)
    var opts = RunOptions()
    opts.writeFiles = false
    opts.evaluate = false
    if let script { opts.script = try CommandScript.parse(script, name: "test-script") }
    let box = RecordBox()
    opts.observer = { box.append($0) }
    options(&opts)
    let trainer = try Trainer(config: config, options: opts)
    before(trainer.channel)
    let end = trainer.run()
    return (box.records, end, trainer)
}

final class RecordBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [RunRecord] = []
    func append(_ r: RunRecord) { lock.lock(); items.append(r); lock.unlock() }
    var records: [RunRecord] { lock.lock(); defer { lock.unlock() }; return items }
}

extension Array where Element == RunRecord {
    var steps: [StepRecord] { compactMap { if case .step(let s) = $0 { s } else { nil } } }
    var events: [EventRecord] { compactMap { if case .event(let e) = $0 { e } else { nil } } }
    /// LR of group 0 used at 1-based step n.
    func lr(at n: Int) -> Double { steps.first { $0.step == n }!.lrs[0] }
}

extension TrainerChannel {
    /// A command typed as text, parsed once as the prompt parses it.
    @discardableResult
    func send(typed text: String) throws -> Int { send(try CommandParser.parse(text), text: text) }
}

func close(_ a: Double, _ b: Double, rel: Double = 1e-9) -> Bool { abs(a - b) <= rel * max(abs(a), abs(b), 1e-300) }

func cosine(_ base: Double, _ t: Int, _ tMax: Int, etaMin: Double = 0) -> Double {
    etaMin + (base - etaMin) * (1 + cos(Double.pi * Double(t) / Double(tMax))) / 2
}

@Suite struct SteeringTests {
    @Test func manualLRIsWhatTheNextSchedulerStepContinuesFrom() throws {
        // StepLR halves every 10 steps; at step 5 the LR is set by hand to 0.02.
        let run = try trainSpirals(steps: 25, scheduler: "step:step_size=10,gamma=0.5", script: "@5 lr 0.02")
        #expect(run.records.lr(at: 5) == 0.1)
        #expect((6...10).allSatisfy { run.records.lr(at: $0) == 0.02 })
        // The scheduler's next decay multiplies the overridden value, as in PyTorch.
        #expect((11...20).allSatisfy { close(run.records.lr(at: $0), 0.01) })
        #expect(close(run.records.lr(at: 21), 0.005))
        let ev = try #require(run.records.events.first { $0.text == "lr 0.02" })
        #expect(ev.kind == .command && ev.step == 5 && ev.lrsBefore == [0.1] && ev.lrsAfter == [0.02])
    }

    @Test func scalingMultipliesAndDivides() throws {
        let run = try trainSpirals(steps: 12, script: "@4 lr *0.5\n@8 lr /5")
        #expect(run.records.lr(at: 4) == 0.1)
        #expect(close(run.records.lr(at: 5), 0.05))
        #expect(close(run.records.lr(at: 9), 0.01))
    }

    @Test func holdPinsAndReleaseReturnsToTheScheduleAsPlanned() throws {
        let run = try trainSpirals(steps: 60, scheduler: "cosine:T_max=100", script: "@10 lr hold\n@30 lr release")
        let held = run.records.lr(at: 11)
        #expect(close(held, cosine(0.1, 10, 100), rel: 1e-6))
        #expect((11...30).allSatisfy { run.records.lr(at: $0) == held })
        // After release: exactly where the schedule would be had nobody intervened.
        for n in 31...60 { #expect(close(run.records.lr(at: n), cosine(0.1, n - 1, 100), rel: 1e-6), "step \(n)") }
    }

    @Test func releaseUndoesAManualOverride() throws {
        let run = try trainSpirals(steps: 30, scheduler: "cosine:T_max=100", script: "@10 lr 0.5\n@20 lr release")
        #expect(run.records.lr(at: 11) == 0.5)
        #expect(close(run.records.lr(at: 21), cosine(0.1, 20, 100), rel: 1e-6))
    }

    @Test func resetRestoresTheBaseLRAndRestartsTheSchedule() throws {
        let run = try trainSpirals(steps: 40, scheduler: "cosine:T_max=100", script: "@20 lr reset")
        #expect(close(run.records.lr(at: 20), cosine(0.1, 19, 100), rel: 1e-6))
        for k in 0..<20 { #expect(close(run.records.lr(at: 21 + k), cosine(0.1, k, 100), rel: 1e-6)) }
    }

    @Test func schedulerSwitchContinuesFromTheCurrentLR() throws {
        let run = try trainSpirals(steps: 80, script: "@20 lr 0.05\n@20 sched cosine:T_max=50")
        #expect(run.records.lr(at: 21) == 0.05)
        for k in 0..<50 { #expect(close(run.records.lr(at: 21 + k), cosine(0.05, k, 50), rel: 1e-6)) }
        // The switch is a risky command: a checkpoint was taken first.
        let kinds = run.records.events.filter { $0.step == 20 }.map(\.kind)
        #expect(kinds.contains(.checkpoint))
    }

    @Test func warmupRampsUpToTheScheduledLR() throws {
        let run = try trainSpirals(steps: 40, script: "@20 warmup 10")
        for k in 1...10 { #expect(close(run.records.lr(at: 20 + k), 0.1 * Double(k) / 10)) }
        #expect(run.records.lr(at: 31) == 0.1)
    }

    @Test func groupCommandsTouchOneGroup() throws {
        let run = try trainSpirals(steps: 10, script: "@5 lr head 0.5", configure: { $0.groups = ["head.*"] })
        let groups = run.trainer.channel.status.groupNames
        #expect(groups.count == 2)
        let head = try #require(groups.firstIndex(of: "head"))
        let s6 = run.records.steps.first { $0.step == 6 }!
        #expect(s6.lrs[head] == 0.5)
        #expect(s6.lrs[1 - head] == 0.1)
    }

    @Test func commandsThatCannotApplyChangeNothingAndLogAnError() throws {
        // Typed in the UI (the channel): a script with these lines is refused before the run starts instead.
        var config = TrainConfig()
        config.data = "synthetic:spirals"; config.batchSize = 32; config.hidden = [32]; config.maxSteps = 10
        config.optimizer = "sgd"; config.lr = 0.1; config.scheduler = "constant"
        var opts = RunOptions()
        opts.writeFiles = false; opts.evaluate = false
        opts.script = try CommandScript.parse("@3 rollback\n@3 resume\n@3 step\n", name: "test-script")
        let box = RecordBox()
        opts.observer = { box.append($0) }
        let trainer = try Trainer(config: config, options: opts)
        let ids = [trainer.channel.send(.lr(group: "nosuchgroup", .set(1e-3))), trainer.channel.send(.sched("cosin")),
                   trainer.channel.send(refused: "lr abc", because: CommandError("invalid LR 'abc'"))]
        let end = trainer.run()
        let run = (records: box.records, end: end)
        let errors = run.records.events.filter { $0.kind == .error }
        #expect(errors.count == 6)
        #expect(errors.allSatisfy { $0.lrsBefore == $0.lrsAfter && $0.lrsAfter == [0.1] })
        #expect(errors[0].message!.contains("no param group 'nosuchgroup'"))
        #expect(errors[1].message!.contains("cosin"))
        // A text that did not parse where it was typed is logged too, with no command (nothing parsed).
        #expect(errors[2].text == "lr abc" && errors[2].command == nil && errors[2].message == "invalid LR 'abc'")
        #expect(errors[3].message!.contains("no checkpoint to roll back to"))
        // Each error carries the command it refused, and each sent command is answered by its id.
        #expect(errors.map(\.command) == [.lr(group: "nosuchgroup", .set(1e-3)), .sched("cosin"), nil, .rollback, .resume,
                                           .step(1)])
        #expect(trainer.channel.takeReplies().map(\.id) == ids)
        #expect((1...10).allSatisfy { run.records.lr(at: $0) == 0.1 })
        #expect(run.end.reason == .completed)
    }

    @Test func pauseAndResumeAtTheSameStepAreLogged() throws {
        let run = try trainSpirals(steps: 10, script: "@4 pause\n@4 step 2\n@4 resume")
        let texts = run.records.events.filter { $0.kind == .command }.map(\.text)
        #expect(texts == ["pause", "step 2", "resume"])
        #expect(run.end.reason == .completed && run.end.step == 10)
    }

    @Test func headlessPauseWithNothingToResumeEndsTheRun() throws {
        let run = try trainSpirals(steps: 10, script: "@4 pause")
        #expect(run.end.reason == .stopped && run.end.step == 4)
        #expect(run.end.message!.contains("no scripted command left"))
    }

    @Test func rollbackRestoresTheRunExactly() throws {
        let run = try trainSpirals(steps: 30, optimizer: "adamw", lr: 1e-3, script: "@10 ckpt\n@20 rollback",
                                   configure: { $0.dropout = 0.1 })
        let steps = run.records.steps
        // Steps 11..20 were trained twice: before and after the rollback, identically (weights, optimizer, data, RNG).
        let first = steps.prefix(20).filter { $0.step > 10 }
        let again = steps.dropFirst(20).prefix(10)
        #expect(first.map(\.step) == again.map(\.step))
        #expect(first.map(\.loss) == again.map(\.loss))
        #expect(run.end.step == 30)
    }

    @Test func divergenceGuardStopsBeforeNaNReachesTheWeights() throws {
        let run = try trainSpirals(steps: 50, lr: 0.1, script: "@5 lr 1e12", configure: {
            $0.guardAction = .stop
        })
        #expect(run.end.reason == .diverged)
        let trip = try #require(run.records.events.first { $0.kind == .guardTrip })
        #expect(trip.message!.contains("stopped"))
        #expect(run.records.steps.allSatisfy { $0.loss.isFinite })
    }

    @Test func divergenceGuardPausesByDefault() throws {
        let run = try trainSpirals(steps: 50, lr: 0.1, script: "@5 lr 1e12")
        let trip = try #require(run.records.events.first { $0.kind == .guardTrip })
        #expect(trip.message!.contains("paused"))
        // Headless, nobody can resume the pause: the run ends as diverged (a non-zero exit).
        #expect(run.end.reason == .diverged)
    }

    @Test func divergenceGuardCanRollBack() throws {
        let run = try trainSpirals(steps: 40, lr: 0.1, script: "@5 ckpt\n@8 lr 1e12", configure: {
            $0.guardAction = .rollback
        })
        let trip = try #require(run.records.events.first { $0.kind == .guardTrip })
        // The LR jump was risky, so a checkpoint was taken just before it: the rollback lands there, before the
        // jump, and halves the LR that was in force then.
        #expect(trip.message!.contains("rolled back to step 8 and halved the LR"))
        #expect(run.records.steps.last!.lrs == [0.05])
        #expect(run.records.steps.allSatisfy { $0.loss.isFinite })
        #expect(run.end.reason == .completed)
    }

    @Test func uiCommandsArriveThroughTheChannelAtStepBoundaries() throws {
        var config = TrainConfig()
        config.data = "synthetic:spirals"; config.batchSize = 32; config.hidden = [16]; config.maxSteps = 100_000
        config.optimizer = "sgd"; config.lr = 0.1; config.scheduler = "constant"
        var opts = RunOptions()
        opts.writeFiles = false; opts.headless = false; opts.publishRecords = true
        let trainer = try Trainer(config: config, options: opts)
        let thread = Thread { trainer.run() }
        thread.start()
        trainer.channel.send(.pause, text: "PAUSE")
        var waited = 0
        while trainer.channel.status.phase != .paused && waited < 500 { Thread.sleep(forTimeInterval: 0.01); waited += 1 }
        #expect(trainer.channel.status.phase == .paused)
        let pausedAt = trainer.channel.status.step
        Thread.sleep(forTimeInterval: 0.1)
        #expect(trainer.channel.status.step == pausedAt)
        let lrID = trainer.channel.send(.lr(group: nil, .set(0.05)), text: "lr 0.05")
        trainer.channel.send(.step(1))
        waited = 0
        while trainer.channel.status.step != pausedAt + 1 && waited < 500 { Thread.sleep(forTimeInterval: 0.01); waited += 1 }
        #expect(trainer.channel.status.phase == .paused)
        trainer.channel.send(.stop)
        while thread.isExecuting || !thread.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        let records = trainer.channel.drain()
        let commands = records.events.filter { $0.command != nil }
        #expect(commands.map(\.text).suffix(4) == ["PAUSE", "lr 0.05", "step", "stop"])
        #expect(commands.map(\.command).suffix(4) == [.pause, .lr(group: nil, .set(0.05)), .step(1), .stop])
        // Every answer comes back by its command's id, with the event that logs it.
        let replies = trainer.channel.takeReplies()
        #expect(replies.map(\.id) == [1, 2, 3, 4])
        #expect(replies.first { $0.id == lrID }?.event.lrsAfter == [0.05])
        #expect(records.steps.last!.lrs == [0.05])
        #expect(records.steps.last!.step == pausedAt + 1)
    }
}
