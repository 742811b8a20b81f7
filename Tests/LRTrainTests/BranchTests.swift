import Testing
import Foundation
import LRTrain
import LRLog
import LRCommand

/// `fork`, `adopt K`, `drop`: branches train from the run's state at the fork point on the same data order;
/// dropping them leaves the run exactly as if it never forked, adopting one is exactly the run that applied the
/// branch's commands at the fork step, and every branch is a sub-run log beside the run's.
@Suite struct BranchTests {
    static func config() -> TrainConfig {
        var c = TrainConfig()
        c.data = "synthetic:spirals"; c.batchSize = 64; c.hidden = [16]; c.dropout = 0.1
        c.epochs = 100; c.maxSteps = 60; c.optimizer = "adamw"; c.lr = 0.05; c.scheduler = "cosine"
        c.checkpointEvery = 10; c.evalEvery = 8
        return c
    }

    final class Run {
        let dir: URL
        let records: [RunRecord]
        let end: EndRecord
        init(dir: URL, records: [RunRecord], end: EndRecord) { self.dir = dir; self.records = records; self.end = end }
        /// What must repeat bit for bit: every step's loss, grad norm and LRs, and every evaluation.
        var trajectory: [String] {
            records.compactMap {
                switch $0 {
                case .step(let s): "\(s.step) \(s.loss.bitPattern) \(s.gradNorm.bitPattern) \(s.lrs.map(\.bitPattern))"
                case .eval(let e): "eval \(e.step) \(e.loss.bitPattern) \(e.accuracy.bitPattern)"
                default: nil
                }
            }
        }
        func subrun(_ name: String) throws -> [RunRecord] {
            try RunLogReader.readRecords(at: dir.appendingPathComponent("subruns/\(name)/log.jsonl")).records
        }
    }

    static func temporaryRunDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-branch-\(UUID().uuidString.prefix(8))")
    }

    /// A run steered like the UI steers it (not headless, commands through the channel), started on its own thread
    /// with `commands` queued before its first step.
    static func startLive(directory: URL?, commands: [String], maxSteps: Int = 60) throws -> (Trainer, RecordBox) {
        var o = RunOptions()
        o.runDirectory = directory
        o.writeFiles = directory != nil
        o.headless = false
        let box = RecordBox()
        o.observer = { box.append($0) }
        var c = config()
        c.maxSteps = maxSteps
        c.epochs = max(c.epochs, maxSteps / 50)
        let trainer = try Trainer(config: c, options: o)
        for c in commands { try trainer.channel.send(typed: c) }
        Thread { trainer.run() }.start()
        return (trainer, box)
    }

    static func train(_ script: String?, headless: Bool = true, configure: (inout TrainConfig) -> Void = { _ in })
        throws -> Run {
        let dir = temporaryRunDirectory()
        var o = RunOptions()
        o.runDirectory = dir
        o.headless = headless
        if let script { o.script = try CommandScript.parse(script, name: "test") }
        let box = RecordBox()
        o.observer = { box.append($0) }
        var c = config()
        configure(&c)
        let end = try Trainer(config: c, options: o).run()
        return Run(dir: dir, records: box.records, end: end)
    }

    @Test func dropLeavesTheRunAsIfItNeverForked() throws {
        let plain = try Self.train(nil)
        let dropped = try Self.train("@20 fork lr=0.5,1e-3 steps=15 jobs=2\n@35 drop")
        defer { for r in [plain, dropped] { try? FileManager.default.removeItem(at: r.dir) } }
        #expect(plain.end.reason == .completed && dropped.end.reason == .completed)
        #expect(dropped.trajectory == plain.trajectory)
        #expect(dropped.end.finalLoss?.bitPattern == plain.end.finalLoss?.bitPattern)
        let drop = try #require(dropped.records.events.first { $0.text == "drop" })
        #expect(drop.kind == .command && drop.step == 20)
        #expect(drop.message?.contains("back at step 20 as before the fork") == true)
        // The branches trained all the same, and stay logged.
        #expect(try dropped.subrun("fork-20-1").steps.map(\.step) == Array(21...35))
        #expect(try dropped.subrun("fork-20-2").steps.map(\.step) == Array(21...35))
    }

    @Test func adoptingABranchIsTheRunThatAppliedItsCommandsAtTheForkStep() throws {
        let direct = try Self.train("@20 sched cosine:T_max=30\n@20 warmup 5")
        let adopted = try Self.train("@20 fork 'lr *0.5' | 'sched cosine:T_max=30; warmup 5' steps=15\n@35 adopt 2")
        defer { for r in [direct, adopted] { try? FileManager.default.removeItem(at: r.dir) } }
        #expect(adopted.end.reason == .completed, "\(adopted.end.message ?? "")")
        // The branch's end-of-branch evaluation at step 35 is the only record the direct run lacks.
        #expect(adopted.trajectory.filter { $0 != adopted.trajectory.first { $0.hasPrefix("eval 35 ") } }
                == direct.trajectory)
        #expect(adopted.records.steps.map(\.step) == Array(1...60))
        #expect(adopted.end.finalLoss?.bitPattern == direct.end.finalLoss?.bitPattern)
        let adopt = try #require(adopted.records.events.first { $0.text == "adopt 2" })
        #expect(adopt.kind == .command && adopt.step == 35)
        #expect(adopt.message?.contains("continuing from branch 2 (sched cosine:T_max=30; warmup 5) at step 35") == true)
        #expect(adopt.message?.contains("subruns/fork-20-2") == true)
        // Branch 2's own commands are now in the run's log, at the fork step, as they were applied there.
        #expect(adopted.records.events.contains { $0.text == "sched cosine:T_max=30" && $0.step == 20 && $0.kind == .command })
    }

    @Test func everyBranchIsASubRunLogBesideTheRunsLog() throws {
        let run = try Self.train("@20 fork lr=0.5,1e-3 steps=12\n@32 adopt 1")
        defer { try? FileManager.default.removeItem(at: run.dir) }
        let fork = try #require(run.records.events.first { $0.text.hasPrefix("fork") })
        #expect(fork.kind == .command && fork.step == 20)
        #expect(fork.message == "2 branches of 12 steps from step 20, 1 at a time: 1 subruns/fork-20-1 (lr 0.5), "
                + "2 subruns/fork-20-2 (lr 1e-3); the run waits here for 'adopt K' or 'drop'")
        let done = try #require(run.records.events.first { $0.kind == .info && $0.text == "fork" })
        #expect(done.message?.hasPrefix("branches from step 20 done: 1 lr 0.5: last batch loss ") == true)
        for (k, label) in [(1, "lr 0.5"), (2, "lr 1e-3")] {
            let records = try run.subrun("fork-20-\(k)")
            guard case .header(let header) = records.first else { Issue.record("no header"); continue }
            #expect(header.subrun == SubRun(kind: .branch, label: label, fromStep: 20, parent: "../../run.jsonl"))
            #expect(records.events.first?.text == label && records.events.first?.step == 20)
            #expect(records.steps.map(\.step) == Array(21...32))
            #expect(records.steps.first?.lrs == [label == "lr 0.5" ? 0.5 : 1e-3])
            let evals = records.compactMap { if case .eval(let e) = $0 { e } else { nil } }
            #expect(evals.last?.step == 32)
            guard case .end(let end) = records.last else { Issue.record("no end record"); continue }
            #expect(end.reason == .completed && end.step == 32)
        }
        // The main log on disk holds the adopted branch's steps as its own, with no gap.
        let main = try RunLogReader.readRecords(at: run.dir.appendingPathComponent("run.jsonl")).records
        #expect(main.steps.map(\.step) == Array(1...60))
        #expect(main.steps.filter { (21...32).contains($0.step) }.map(\.loss)
                == (try run.subrun("fork-20-1")).steps.map(\.loss))
    }

    @Test func branchesTrainedSideBySideMatchBranchesTrainedOneAfterAnother() throws {
        // Side by side, each branch multiplies on one BLAS thread; this model's products are below OpenBLAS's
        // threading threshold, so one at a time they run on one thread too (BLAS's thread count is the process's:
        // setting it here would change other tests running beside this one).
        let one = try Self.train("@10 fork lr=0.3,0.1,0.01 steps=10 jobs=1\n@20 drop")
        let three = try Self.train("@10 fork lr=0.3,0.1,0.01 steps=10 jobs=3\n@20 drop")
        defer { for r in [one, three] { try? FileManager.default.removeItem(at: r.dir) } }
        for k in 1...3 {
            let a = try one.subrun("fork-10-\(k)").steps.map { $0.loss.bitPattern }
            let b = try three.subrun("fork-10-\(k)").steps.map { $0.loss.bitPattern }
            #expect(a.count == 10 && a == b, "branch \(k)")
        }
    }

    @Test func aHeadlessRunWithNothingToChooseABranchEndsAtTheForkPoint() throws {
        let run = try Self.train("@20 fork lr=0.5 steps=5")
        defer { try? FileManager.default.removeItem(at: run.dir) }
        #expect(run.end.reason == .stopped && run.end.step == 20)
        #expect(run.end.message?.contains("wait for 'adopt K' or 'drop', with no scripted command left") == true)
    }

    @Test func aSecondForkAtTheSameStepGetsItsOwnFolders() throws {
        let dir = Self.temporaryRunDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Paused first, so both forks start at step 0.
        let (trainer, box) = try Self.startLive(directory: dir, commands: ["pause"])
        for lr in ["0.5", "0.1"] {
            let reports = box.records.events.filter { $0.kind == .info && $0.text == "fork" }.count
            try trainer.channel.send(typed: "fork lr=\(lr) steps=5")
            waitFor("the branches") { box.records.events.filter { $0.kind == .info && $0.text == "fork" }.count > reports }
            try trainer.channel.send(typed: "drop")
        }
        try trainer.channel.send(typed: "stop")
        waitFor("the end") { box.records.contains { if case .end = $0 { true } else { false } } }
        // After the drop the run is back at step 0: the second fork starts there too.
        func first(_ name: String) throws -> StepRecord? {
            try RunLogReader.readRecords(at: dir.appendingPathComponent("subruns/\(name)/log.jsonl")).records.steps.first
        }
        #expect(try first("fork-0-1")?.lrs == [0.5])
        #expect(try first("fork-0-1-2")?.lrs == [0.1])
    }

    @Test(arguments: [
        ("@20 fork lr=0.5 steps=10\n@25 lr 0.1", "test:2: the run waits at step 20 while the branches of line 1's fork train to step 30"),
        ("@20 fork lr=0.5 steps=10\n@30 lr 0.1", "test:2: the run waits at the fork of line 1 until 'adopt K' or 'drop'"),
        ("@20 fork lr=0.5 steps=10\n@30 adopt 2", "test:2: no branch 2: the fork of line 1 has branches 1 to 1"),
        ("@20 adopt 1", "test:1: no fork before it in the script"),
        ("@55 fork lr=0.5 steps=10", "test:1: the branches would train past the run's last step (60): give steps=5 or fewer"),
        ("@20 fork 'lr *2' | 'sched cosin' steps=10", "test:1: branch 2: "),
        ("@20 fork 'lr head 0.1' steps=10", "test:1: branch 1: no param group 'head'"),
    ])
    func scriptsThatCannotWorkAreRefusedBeforeTheRunStarts(script: String, message: String) throws {
        var o = RunOptions()
        o.writeFiles = false
        o.script = try CommandScript.parse(script, name: "test")
        do {
            _ = try Trainer(config: Self.config(), options: o)
            Issue.record("should be refused: \(script)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    @Test(arguments: ["drop", "stop"])
    func droppingOrStoppingWhileBranchesTrainStopsThemAndSaysWhy(command: String) throws {
        let dir = Self.temporaryRunDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Branches far longer than the test: the command comes while the first trains and the second waits.
        let (trainer, box) = try Self.startLive(directory: dir, commands: ["pause", "fork lr=0.1,0.01 steps=10000000"],
                                                maxSteps: 10_000_000)
        waitFor("the first branch to train") {
            ((try? RunLogReader.readRecords(at: dir.appendingPathComponent("subruns/fork-0-1/log.jsonl")))?.records.steps
                .count ?? 0) > 0 || box.records.events.contains { $0.kind == .info && $0.text == "fork" }
        }
        try trainer.channel.send(typed: command)
        if command == "drop" { try trainer.channel.send(typed: "stop") }
        waitFor("the end") { box.records.contains { if case .end = $0 { true } else { false } } }
        #expect(trainer.step == 0)
        let ends = try (1...2).map { k -> EndRecord? in
            let records = try RunLogReader.readRecords(at: dir.appendingPathComponent("subruns/fork-0-\(k)/log.jsonl")).records
            guard case .end(let end) = records.last else { return nil }
            return end
        }
        // Each branch's log is complete and says why it stopped.
        let why = command == "drop" ? "the branches were dropped" : "the run stopped"
        let first = try #require(ends[0]), second = try #require(ends[1])
        #expect(first.reason == .stopped && first.message?.hasPrefix("stopped at step ") == true
                && first.message?.hasSuffix(why) == true, "\(first)")
        #expect(second.reason == .stopped && second.message == "not trained: \(why)", "\(second)")
        if command == "stop" {
            #expect(box.records.events.contains { $0.text == "fork" && $0.message?.contains("ended at the fork point") == true })
        }
    }

    @Test func whileBranchesExistTheRunTakesOnlyAdoptDropAndStop() throws {
        let (trainer, box) = try Self.startLive(directory: nil,
                                                commands: ["adopt 1", "fork lr=1e9,0.01 steps=8", "lr 0.1", "adopt 2"])
        waitFor("the branches") { box.records.events.contains { $0.kind == .info && $0.text == "fork" } }
        #expect(trainer.channel.status.phase == .paused)
        #expect(trainer.channel.status.message == "branches done: adopt K or drop")
        try trainer.channel.send(typed: "adopt 1")
        try trainer.channel.send(typed: "adopt 3")
        try trainer.channel.send(typed: "drop")
        try trainer.channel.send(typed: "stop")
        waitFor("the end") { box.records.contains { if case .end = $0 { true } else { false } } }
        let errors = box.records.events.filter { $0.kind == .error }.map { "\($0.text): \($0.message ?? "")" }
        #expect(errors.count == 5)
        #expect(errors[0] == "adopt 1: no branches to adopt: 'fork' starts some, e.g. 'fork lr=1e-3,1e-4 steps=300'")
        #expect(errors[1] == "lr 0.1: the run waits at step 0 for its branches: 'adopt K' or 'drop' first")
        #expect(errors[2] == "adopt 2: branch 2 has not finished (step 0 of 8): wait for it, or 'drop'")
        #expect(errors.contains { $0.hasPrefix("adopt 1: branch 1 diverged") })
        #expect(errors.contains { $0 == "adopt 3: no branch 3: this fork has branches 1 to 2" })
        #expect(box.records.events.contains { $0.text == "drop" && $0.kind == .command })
    }
}

func waitFor(_ what: String, seconds: Double = 60, _ done: () -> Bool) {
    let deadline = Date().addingTimeInterval(seconds)
    while !done() && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    #expect(done(), "timed out waiting for \(what)")
}
