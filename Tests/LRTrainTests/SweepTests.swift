import Testing
import Foundation
import LRLog
import LRTrain
import LRModels

@Suite struct SearchSpaceTests {
    @Test func lrRangesAndLists() throws {
        #expect(try SearchSpaceParser.lrs("1e-4..1e-2:log:5") == [1e-4, 3.16e-4, 1e-3, 3.16e-3, 1e-2])
        #expect(try SearchSpaceParser.lrs("0.1..0.5:lin:5") == [0.1, 0.2, 0.3, 0.4, 0.5])
        #expect(try SearchSpaceParser.lrs("1e-3,3e-4, 1e-4") == [1e-3, 3e-4, 1e-4])
        #expect(try SearchSpaceParser.lrs("3e-4") == [3e-4])
        #expect(try SearchSpaceParser.lrs("1e-3..1e-2:LOG:1") == [1e-3])
    }

    @Test(arguments: [
        ("1e-2..1e-4:log:5", "invalid --lr '1e-2..1e-4:log:5': the range runs downwards; write it low to high, e.g. 1e-4..1e-2:log:5"),
        ("abc", "invalid --lr 'abc': 'abc' is not a number; expected a number (3e-4), a list (1e-3,3e-4) or a range LOW..HIGH:log:N or LOW..HIGH:lin:N (e.g. 1e-4..1e-2:log:5)"),
        ("1e-4..1e-2", "invalid --lr '1e-4..1e-2': a range needs a scale and a count, e.g. 1e-4..1e-2:log:5 or 1e-4..1e-2:lin:5"),
        ("1e-4..1e-2:log:0", "invalid --lr '1e-4..1e-2:log:0': a count of 0 gives no LR to try: give at least 1"),
        ("0..1e-2:log:3", "invalid --lr '0..1e-2:log:3': a log range needs a low end above 0, e.g. 1e-5..1e-2:log:3"),
        ("1e-3,-1", "invalid --lr '1e-3,-1': a learning rate cannot be negative"),
        ("1e-3,,1e-4", "invalid --lr '1e-3,,1e-4': '' is not a number; expected a number (3e-4), a list (1e-3,3e-4) or a range LOW..HIGH:log:N or LOW..HIGH:lin:N (e.g. 1e-4..1e-2:log:5)"),
    ])
    func badLRsSayWhatIsWrong(text: String, message: String) {
        #expect(throws: SweepError.self) { try SearchSpaceParser.lrs(text) }
        do { _ = try SearchSpaceParser.lrs(text) } catch { #expect(error.description == message) }
    }

    @Test func warmupsInStepsOrEpochs() throws {
        let w = try SearchSpaceParser.warmups("0,1ep,3ep,200,0.5ep")
        #expect(w == [.steps(0), .epochs(1), .epochs(3), .steps(200), .epochs(0.5)])
        #expect(w.map { $0.steps(stepsPerEpoch: 469) } == [0, 469, 1407, 200, 235])
        #expect(w.map(\.description) == ["0", "1ep", "3ep", "200", "0.5ep"])
        #expect(throws: SweepError.self) { try SearchSpaceParser.warmups("1x") }
        #expect(throws: SweepError.self) { try SearchSpaceParser.warmups("-5") }
    }

    @Test func specListsKeepTheirOwnCommas() throws {
        #expect(try SearchSpaceParser.specs(["cosine,step,plateau"], option: "sched") == ["cosine", "step", "plateau"])
        #expect(try SearchSpaceParser.specs(["cosine:T_max=2000,eta_min=1e-5,step:step_size=100,gamma=0.5"], option: "sched")
                == ["cosine:T_max=2000,eta_min=1e-5", "step:step_size=100,gamma=0.5"])
        #expect(try SearchSpaceParser.specs(["warmup:steps=100 -> cosine", "plateau:patience=2"], option: "sched")
                == ["warmup:steps=100 -> cosine", "plateau:patience=2"])
        #expect(try SearchSpaceParser.specs(["adamw:betas=0.9/0.95,weight_decay=0.1,sgd:momentum=0.9"], option: "optimizer")
                == ["adamw:betas=0.9/0.95,weight_decay=0.1", "sgd:momentum=0.9"])
        #expect(throws: SweepError.self) { try SearchSpaceParser.specs(["cosine,,step"], option: "sched") }
    }

    @Test func aSchedulerNamedAloneGetsWhatItsSpecMustGiveSizedToTheRun() {
        #expect(SearchSpaceParser.filledIn("step", totalSteps: 1407) == "step:step_size=469")
        #expect(SearchSpaceParser.filledIn("step:gamma=0.5", totalSteps: 1407) == "step:gamma=0.5,step_size=469")
        #expect(SearchSpaceParser.filledIn("step:step_size=100", totalSteps: 1407) == "step:step_size=100")
        #expect(SearchSpaceParser.filledIn("cosine", totalSteps: 1407) == "cosine")
        #expect(SearchSpaceParser.filledIn("warmup:steps=10 -> cosine", totalSteps: 1407) == "warmup:steps=10 -> cosine")
    }

    @Test func configurationsAreTheProductAndWarmupFitsEachScheduler() throws {
        let space = SearchSpace(optimizers: ["adamw", "sgd"], lrs: [1e-3, 1e-2], warmups: [.steps(0), .epochs(1)],
                                schedulers: ["cosine", "plateau"], seeds: [0, 1])
        let configs = space.configurations
        #expect(configs.count == 16)
        #expect(configs.first?.name == "c01" && configs.last?.name == "c16")
        #expect(configs[0].label == "adamw lr=0.001 warmup=0 cosine")
        #expect(configs[15].optimizer == "sgd" && configs[15].lr == 1e-2 && configs[15].scheduler == "plateau")
        let base = TrainConfig()
        // A warmup before a schedule is part of its spec; plateau learns from a metric, so it gets the command.
        let cosine = configs[2].setup(base: base, seed: 7, stepsPerEpoch: 100)
        #expect(cosine.config.scheduler == "warmup:steps=100 -> cosine" && cosine.warmupCommand == nil)
        #expect(cosine.config.seed == 7 && cosine.config.lr == 1e-3 && cosine.config.optimizer == "adamw")
        let plateau = configs[3].setup(base: base, seed: 0, stepsPerEpoch: 100)
        #expect(plateau.config.scheduler == "plateau" && plateau.warmupCommand == 100)
        #expect(configs[0].setup(base: base, seed: 0, stepsPerEpoch: 100).config.scheduler == "cosine")
    }
}

@Suite struct SweepBudgetTests {
    static let cost = SweepBudget.TrialCost(stepSeconds: 0.01, evalSeconds: 0.1, checkpointBytes: 1_000_000, logBytesPerStep: 200)

    @Test func theEstimateCountsHalvingEvaluationsAndCheckpoints() {
        // 9 configurations x 2 seeds, rungs at 100 and 300 steps, eta 3: 18 trials to 100, 6 on to 300.
        let b = SweepBudget(budgets: [100, 300], eta: 3, configurations: 9, seeds: 2, cost: Self.cost, evalEvery: 100,
                            stepsPerEpoch: 100, checkpointsKept: 0, jobs: 1)
        #expect(b.trials == 18)
        #expect(b.steps == 18 * 100 + 6 * 200)
        // Evaluations: every 100 steps (eval-every and the epoch) and at each trial's rung end.
        #expect(b.seconds == 3000 * 0.01 + (30 + 30 + 24) * 0.1)
        #expect(b.bytes == 3000 * 200 + 24 * 1_000_000)
        #expect(b.summary == "about 38 s of training and 25 MB of disk")
    }

    @Test func aSweepOverALimitIsRefusedWithItsFigures() {
        let disk = SweepBudget(budgets: [100, 300], eta: 3, configurations: 9, seeds: 2, cost: Self.cost, evalEvery: 100,
                               stepsPerEpoch: 100, checkpointsKept: 0, jobs: 1)
        #expect(throws: SweepError("a sweep of 18 trials (3,000 steps: about 38 s of training and 25 MB of disk) needs more "
            + "disk than the 1.0 MB free on the file system of runs: free some space, choose another --sweep-dir, or narrow "
            + "--lr, --warmup, --sched, --optimizer or --seeds")) { try disk.check(freeBytes: 1e6, folder: "runs") }
        #expect(throws: Never.self) { try disk.check(freeBytes: nil, folder: "runs") }
        let slow = SweepBudget(budgets: [1_000_000], eta: 3, configurations: 100, seeds: 1, cost: Self.cost, evalEvery: 1_000_000,
                               stepsPerEpoch: 1_000_000, checkpointsKept: 0, jobs: 1)
        #expect(throws: SweepError("a sweep of 300 trials (300,000,000 steps: about 34.7 days of training and 60 GB of disk) "
            + "would train for longer than 30 days: narrow --lr, --warmup, --sched, --optimizer or --seeds, or train fewer --epochs")) {
            try SweepBudget(budgets: [1_000_000], eta: 3, configurations: 300, seeds: 1, cost: Self.cost, evalEvery: 1_000_000,
                            stepsPerEpoch: 1_000_000, checkpointsKept: 0, jobs: 1).check(freeBytes: nil, folder: "runs")
        }
        #expect(slow.seconds < SweepBudget.maxSeconds)
    }
}

@Suite struct HalvingTests {
    @Test func rungsGrowByEtaUpToTheFullRun() throws {
        // 27 configurations, eta 3: 27 → 9 → 3 → 1 over four rungs.
        let plan = try HalvingPlan(totalSteps: 1407, configurations: 27, eta: 3)
        #expect(plan.budgets == [52, 156, 469, 1407])
        #expect(plan.survivors(of: 27) == 9 && plan.survivors(of: 9) == 3 && plan.survivors(of: 3) == 1)
        // 27·52 + 9·104 + 3·313 + 1·938 = 4,217 steps per seed instead of 27·1407 = 37,989.
        #expect(plan.totalSteps(configurations: 27, seeds: 2) == 2 * (27 * 52 + 9 * 104 + 3 * 313 + 938))
        // A short run keeps the first rung at least 20 steps long.
        #expect(try HalvingPlan(totalSteps: 200, configurations: 27, eta: 3).budgets == [22, 67, 200])
        #expect(try HalvingPlan(totalSteps: 1000, configurations: 2, eta: 3).budgets == [1000])
        #expect(try HalvingPlan(totalSteps: 900, configurations: 5, eta: 3, rungs: 3).budgets == [100, 300, 900])
        #expect(throws: SweepError.self) { try HalvingPlan(totalSteps: 100, configurations: 3, eta: 1) }
        #expect(throws: SweepError.self) { try HalvingPlan(totalSteps: 100, configurations: 0, eta: 3) }
    }

    @Test func theBestThirdGoesOnAndAFailedTrialNever() {
        let plan = HalvingPlan(budgets: [10, 30, 90], eta: 3)
        let scores: [(id: Int, score: Double?)] = [(0, 0.9), (1, 0.4), (2, nil), (3, 0.5), (4, .nan), (5, 0.45), (6, 0.3)]
        // 7 configurations: 2 go on, the lowest scores.
        #expect(plan.promoted(scores) == [6, 1])
        // Ties keep the configurations' order.
        #expect(plan.promoted([(0, 0.5), (1, 0.5), (2, 0.5)]) == [0])
        // None finished the rung: none goes on.
        #expect(plan.promoted([(0, nil), (1, .infinity)]) == [])
    }
}

@Suite struct SweepRunnerTests {
    /// A trial promoted through the rungs (stopped at each budget, resumed from its checkpoint) ends exactly where
    /// one run to the full budget ends.
    @Test func aPromotedTrialTrainsAsOneRunWould() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        var base = TrainConfig()
        base.data = "synthetic:spirals"
        base.epochs = 0
        base.maxSteps = 90
        base.hidden = [32]
        base.evalEvery = 10
        let space = SearchSpace(optimizers: ["adamw"], lrs: [1e-3, 1e-2, 3e-2], warmups: [.steps(0)],
                                schedulers: ["cosine"], seeds: [0])
        let data = try DataLoader.load(spec: "synthetic:spirals")
        let plan = HalvingPlan(budgets: [10, 30, 90], eta: 3)
        let runner = SweepRunner(base: base, space: space, plan: plan, directory: dir, data: data, stepsPerEpoch: 46,
                                 totalSteps: 90)
        let result = runner.run()
        #expect(result.finished && !result.interrupted)
        let best = try #require(result.best)
        #expect(result.state(of: best) == .done)
        #expect(result.configurations.indices.filter { result.state(of: $0) == .stopped }.count == 2)
        let trial = result.trials(of: best).first!
        #expect(trial.rungsDone == 3 && trial.step == 90)
        // The sweep's trial log and a straight run of the same configuration give the same final evaluation.
        var straight = space.configurations[best].setup(base: base, seed: 0, stepsPerEpoch: 46).config
        straight.name = trial.name
        var options = RunOptions()
        options.writeFiles = false
        let trainer = try Trainer(config: straight, options: options)
        #expect(trainer.run().step == 90)
        let final = trainer.evaluate()
        #expect(trial.eval(at: 90)?.loss == final.loss)
        #expect(trial.eval(at: 90)?.accuracy == final.accuracy)
        let log = try RunLogReader.readRecords(at: dir.appendingPathComponent("trials/\(trial.name)/log.jsonl")).records
        guard case .header(let header) = log.first else { Issue.record("no header"); return }
        #expect(header.subrun?.kind == .trial)
        #expect(header.subrun?.label.hasPrefix(trial.name) == true)
        // Stopped at the end of rungs 1 and 2, resumed twice, completed at 90.
        let ends = log.compactMap { if case .end(let e) = $0 { e } else { nil } }
        #expect(ends.map(\.step) == [10, 30, 90])
        #expect(ends.map(\.reason) == [.stopped, .stopped, .completed])
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("sweep.json").path))
    }
}
