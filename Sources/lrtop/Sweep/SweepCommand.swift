import ArgumentParser
import Foundation
import LRLog
import LRModels
import LROptim
import LRTrain
import LRTUI
import LRCommand

extension SweepMetric: ExpressibleByArgument {}

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search the optimizer, LR, warmup and schedule with successive halving before a long run.",
        discussion: """
        Every combination of --optimizer, --lr, --warmup and --sched is a configuration, trained once per seed. \
        Successive halving: all configurations train to the first rung's budget, the best 1/eta (mean over the \
        seeds) go on from where they stopped to a budget eta times larger, up to the full run (--epochs or \
        --max-steps, as for 'lrtop train'). Every other 'lrtop train' option sets what all trials share \
        (--data, --model, --batch-size, --epochs, --max-steps, --seed for the first seed ...).

        Each trial is a run: SWEEP_DIR/trials/NAME/log.jsonl ('lrtop replay' draws it); SWEEP_DIR/sweep.json holds \
        the rungs and results. The end prints the table and a 'lrtop train' line that reproduces the best.

        Examples:
          lrtop sweep --lr 1e-4..1e-2:log:5 --warmup 0,1ep,3ep --sched cosine,step,plateau --seeds 2 --epochs 3
          lrtop sweep --optimizer adamw,sgd:momentum=0.9 --lr 1e-3,3e-3 --sched 'warmup:steps=100 -> cosine' --headless
        """)

    @Option(help: "LRs: a range LOW..HIGH:log:N or LOW..HIGH:lin:N, or a list 1e-3,3e-4.")
    var lr = "1e-3"
    @Option(help: "Warmup lengths, comma separated: steps (200) or epochs (1ep, 0.5ep); 0 for none.")
    var warmup = "0"
    @Option(name: [.customLong("sched"), .customLong("scheduler")], parsing: .unconditionalSingleValue,
            help: "Scheduler specs, comma separated or repeated: cosine,step,plateau or 'warmup:steps=100 -> cosine' (default: the train default, warmup + cosine; cosine when --warmup is given).")
    var sched: [String] = []
    @Option(parsing: .unconditionalSingleValue, help: "Optimizer specs, comma separated or repeated: adamw,sgd:momentum=0.9 (default: adamw).")
    var optimizer: [String] = []
    @Option(help: "Seeds per configuration (from --seed up): ranked by the mean, shown with the spread.")
    var seeds = 1
    @Option(help: "Halving factor: the best 1/eta of each rung go on, with eta times the budget.")
    var eta = 3
    @Option(help: "Rungs (default: as many as the configurations allow, the first at least 20 steps).")
    var rungs: Int?
    @Option(help: "What halving ranks by: val_loss or val_acc.")
    var metric = SweepMetric.valLoss
    @Option(help: "Trials trained at a time (each its own trainer).")
    var jobs = 1
    @Flag(help: "No terminal UI: a progress line per finished trial and rung, then the table.")
    var headless = false
    @Option(name: .customLong("sweep-dir"), help: "The sweep's folder (default: ./runs/sweep-DATE_TIME).")
    var sweepDir: String?
    @Flag(help: "Replace an earlier sweep's trials and sweep.json in --sweep-dir.")
    var force = false
    @Option(help: "Theme name from 'lrtop themes' (the UI only).")
    var theme: String?
    @OptionGroup var terminal: TerminalFlags
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Any 'lrtop train' option shared by every trial.", valueName: "train options"))
    var trainArguments: [String] = []

    func run() throws {
        let plan = try prepare()
        try execute(plan)
    }

    /// Everything checked before any training: the space, the train options, the dataset, every configuration.
    struct Prepared {
        var base: TrainConfig
        var space: SearchSpace
        var plan: HalvingPlan
        var budget: SweepBudget
        var data: LoadedData
        var datasetName: String
        var stepsPerEpoch: Int
        var totalSteps: Int
        var directory: URL
        var threads: Int
        var sharedArguments: [String]
    }

    func prepare() throws -> Prepared {
        let lrCount: Int, warmups: [WarmupLength], schedulers: [String?], optimizers: [String]
        do {
            lrCount = try SearchSpaceParser.lrCount(lr)
            warmups = try SearchSpaceParser.warmups(warmup)
            let givenWarmup = warmups.contains { $0 != .steps(0) }
            // No --sched: the train default (nil), or cosine after a --warmup (the default has a warmup of its own).
            schedulers = sched.isEmpty ? [givenWarmup ? "cosine" : nil] : try SearchSpaceParser.specs(sched, option: "sched")
            optimizers = optimizer.isEmpty ? ["adamw"] : try SearchSpaceParser.specs(optimizer, option: "optimizer")
        } catch { try fail(error.description) }
        for o in optimizers {
            do { _ = try OptimizerSpec(parsing: o) } catch { try fail("invalid --optimizer '\(o)': \(error)") }
        }
        for case let s? in schedulers {
            let spec = SearchSpaceParser.filledIn(s, totalSteps: 1000)
            do { _ = try SchedulerFactory.validate(spec: spec, context: ScheduleContext(totalSteps: 1000, stepsPerEpoch: 100)) }
            catch { try fail("invalid --sched '\(s)': \(error)") }
        }
        if schedulers.contains(nil) && warmups.contains(where: { $0 != .steps(0) }) {
            try fail("--warmup needs --sched: the default schedule has its own warmup (e.g. --sched cosine)")
        }
        guard seeds >= 1 else { try fail("invalid --seeds \(seeds): at least 1 seed per configuration") }
        guard jobs >= 1 else { try fail("invalid --jobs \(jobs): at least 1 trial at a time") }
        for a in trainArguments where a.hasPrefix("-") {
            let name = String(a.drop { $0 == "-" }.prefix { $0 != "=" })
            if ["resume", "init", "commands", "run-dir", "log", "headless"].contains(name) {
                try fail("--\(name) is an option of 'lrtop train', not of a sweep: every trial starts fresh in SWEEP_DIR/trials")
            }
        }
        let options: TrainOptions
        do { options = try TrainOptions.parse(trainArguments) } catch { try fail(TrainOptions.message(for: error)) }
        var base: TrainConfig
        do { base = try options.config() } catch { try fail(TrainOptions.message(for: error)) }
        let data: LoadedData
        do { data = try DataLoader.load(spec: base.data, normalize: base.normalize) } catch { try fail("\(error)") }
        if let notice = data.notice { printErr("lrtop: \(notice)") }
        // A trainer that writes nothing sizes the run (steps per epoch, total) exactly as the trials will.
        var probeOptions = RunOptions()
        probeOptions.writeFiles = false
        probeOptions.evaluate = false
        probeOptions.preloadedData = data
        let probe: Trainer
        do {
            var c = base
            c.scheduler = "constant"
            probe = try Trainer(config: c, options: probeOptions)
        } catch { try fail("\(error)") }
        // The size, before anything of that size is made: refused with the time and disk it would take.
        let configurationCount = Double(lrCount) * Double(warmups.count) * Double(schedulers.count) * Double(optimizers.count)
        let plan: HalvingPlan
        do {
            plan = try HalvingPlan(totalSteps: probe.totalSteps, configurations: Int(min(configurationCount, 1e15)),
                                   eta: eta, rungs: rungs)
        } catch { try fail(error.description) }
        if base.evalEvery == nil { base.evalEvery = plan.budgets[0] }
        let budget = SweepBudget(budgets: plan.budgets, eta: plan.eta, configurations: configurationCount,
                                 seeds: Double(seeds), cost: probe.measureTrialCost(), evalEvery: base.evalEvery ?? probe.totalSteps,
                                 stepsPerEpoch: probe.stepsPerEpoch,
                                 checkpointsKept: base.checkpointEvery > 0 ? base.checkpointKeep : 0, jobs: jobs)
        let folder = sweepDir ?? "runs"
        do { try budget.check(freeBytes: SweepBudget.freeBytes(at: folder), folder: folder) } catch { try fail(error.description) }
        let lrs: [Double]
        do { lrs = try SearchSpaceParser.lrs(lr) } catch { try fail(error.description) }
        var space = SearchSpace(optimizers: optimizers, lrs: lrs, warmups: warmups, schedulers: schedulers,
                                seeds: (0..<UInt64(seeds)).map { base.seed &+ $0 })
        guard !space.configurations.isEmpty else { try fail("the search space holds no configuration") }
        space.schedulers = space.schedulers.map { $0.map { SearchSpaceParser.filledIn($0, totalSteps: probe.totalSteps) } }
        let configurations = space.configurations
        // Every configuration is built once as its trials will be, so a bad one is refused before any training; the
        // LR aside (checked when parsed), one of each optimizer, warmup and scheduler is enough.
        var checked = Set<String>()
        for c in configurations where checked.insert("\(c.optimizer)|\(c.warmup)|\(c.scheduler ?? "default")").inserted {
            let w = c.warmup.steps(stepsPerEpoch: probe.stepsPerEpoch)
            if w >= probe.totalSteps {
                try fail("--warmup \(c.warmup) is \(w) steps, as long as the whole run (\(probe.totalSteps) steps): give a shorter warmup or more --epochs")
            }
            let (config, warmupCommand) = c.setup(base: base, seed: space.seeds[0], stepsPerEpoch: probe.stepsPerEpoch)
            var check = probeOptions
            if let w = warmupCommand { check.script = CommandScript(entries: [.init(step: 0, command: .warmup(w))], name: "sweep") }
            do { _ = try Trainer(config: config, options: check) } catch {
                try fail("configuration \(c.name) (\(c.label)): \(error)")
            }
        }
        let directory = try sweepDirectory()
        return Prepared(base: base, space: space, plan: plan, budget: budget, data: data, datasetName: probe.datasetName,
                        stepsPerEpoch: probe.stepsPerEpoch, totalSteps: probe.totalSteps, directory: directory,
                        threads: jobs > 1 ? max(1, options.blasThreads / jobs) : options.blasThreads,
                        sharedArguments: trainArguments)
    }

    /// The sweep's folder, made ready: an earlier sweep there is refused without --force.
    func sweepDirectory() throws -> URL {
        let fm = FileManager.default
        let dir: URL
        if let sweepDir { dir = URL(fileURLWithPath: sweepDir) } else {
            do { dir = try RunDirectory.makeDefault(prefix: "sweep-") } catch { try fail("\(error)") }
        }
        let instead = "choose another --sweep-dir"
        do { try SafeFiles.prepareFolder(dir, what: "the sweep folder", instead: instead) } catch { try fail(error.message) }
        let trials = dir.appendingPathComponent("trials"), summary = dir.appendingPathComponent("sweep.json")
        if fm.fileExists(atPath: trials.path) || fm.fileExists(atPath: summary.path) {
            guard force else {
                try fail("\(dir.path) already holds a sweep (trials/, sweep.json); nothing was overwritten: choose another --sweep-dir or pass --force to replace it")
            }
            try? fm.removeItem(at: trials)
            try? fm.removeItem(at: summary)
        }
        do { try SafeFiles.prepareFolder(trials, what: "the sweep's trials folder", instead: instead) } catch {
            try fail(error.message)
        }
        return dir
    }

    func execute(_ p: Prepared) throws {
        let runner = SweepRunner(base: p.base, space: p.space, plan: p.plan, directory: p.directory, data: p.data,
                                 stepsPerEpoch: p.stepsPerEpoch, totalSteps: p.totalSteps, metric: metric, jobs: jobs,
                                 threads: p.threads, version: LRTop.version)
        let n = p.space.configurations.count, seedCount = p.space.seeds.count
        let full = n * seedCount * p.totalSteps
        let halving = p.plan.totalSteps(configurations: n, seeds: seedCount)
        let intro = [
            "lrtop: sweep of \(n) configuration\(n == 1 ? "" : "s") × \(seedCount) seed\(seedCount == 1 ? "" : "s") on \(p.datasetName), "
                + "\(p.totalSteps) steps each at most (\(p.stepsPerEpoch)/epoch)",
            "lrtop: rungs end at step \(p.plan.budgets.map(String.init).joined(separator: ", ")) (eta \(p.plan.eta), ranked by mean \(metric.rawValue)): "
                + "\(Format.grouped(halving)) steps in all instead of \(Format.grouped(full)) for the full grid",
            "lrtop: estimated \(p.budget.summary) (a step measured at \(String(format: "%.2g", p.budget.cost.stepSeconds * 1000)) ms)",
            "lrtop: sweep folder \(p.directory.path)",
        ]
        let reporter = SweepReporter(runner: runner, metric: metric)
        let snapshot: SweepSnapshot
        if headless {
            SignalFlag.install()
            for line in intro { reporter.line(line) }
            runner.onEvent = { reporter.handle($0) }
            snapshot = runner.run()
        } else {
            guard isatty(STDOUT_FILENO) == 1, isatty(STDIN_FILENO) == 1 else {
                try fail("the terminal UI needs a terminal (stdout is not one): run 'lrtop sweep --headless' for progress lines instead")
            }
            snapshot = try runLive(runner, prepared: p, intro: intro)
            for line in intro { reporter.line(line) }
        }
        reporter.final(snapshot, prepared: p, trainLine: trainLine(snapshot, p))
        // Ctrl-C or a signal: 128 + its number, as for 'lrtop train'; stopped with q q in the UI, the partial result
        // is what the person asked for.
        if let full = snapshot.stoppedBy {
            try fail("the sweep stopped early: a trial ran out of disk space (\(full)); free space on that disk, or choose "
                 + "another --sweep-dir, and run the sweep again")
        }
        if snapshot.interrupted && SignalFlag.received { throw ExitCode(128 + SignalFlag.number) }
        if snapshot.best == nil { throw ExitCode(1) }
    }

    /// The leaderboard on this thread, the sweep on its own.
    func runLive(_ runner: SweepRunner, prepared p: Prepared, intro: [String]) throws -> SweepSnapshot {
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGWINCH] { sigaddset(&signals, s) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread {
            runner.run()
            finished.signal()
        }
        thread.stackSize = 16 << 20
        thread.name = "lrtop-sweep"
        thread.start()
        let (loadedTheme, _) = try Themes.resolve(theme)
        let source = SweepBoardSource(runner: runner, title: "sweep · \(p.directory.path)",
                                      trainLine: { trainLine($0, p) })
        var options = terminal.applied(to: TUIOptions(pollMs: 100))
        options.mouse = false
        let reason = try TUIApp.run(Leaderboard(source: source, theme: loadedTheme), options: options)
        if case .interrupted(let s) = reason { SignalFlag.raise(s) }
        runner.requestStop()
        finished.wait()
        return runner.snapshot
    }

    /// `lrtop train ...` for the best configuration's first seed: the options every trial shared, then the
    /// configuration's own, so the run reproduces that trial step for step.
    func trainLine(_ s: SweepSnapshot, _ p: Prepared) -> String? {
        guard let c = s.best else { return nil }
        let cfg = s.configurations[c]
        let trial = s.trials(of: c).first!
        let (config, warmupCommand) = cfg.setup(base: p.base, seed: trial.seed, stepsPerEpoch: p.stepsPerEpoch)
        var args = ["lrtop", "train"]
        var skip = false
        // The shared options as typed, without those the configuration sets.
        for a in p.sharedArguments {
            if skip { skip = false; continue }
            let name = String(a.drop { $0 == "-" }.prefix { $0 != "=" })
            if a.hasPrefix("--") && ["seed", "optimizer", "lr", "scheduler", "eval-every"].contains(name) {
                skip = !a.contains("="); continue
            }
            args.append(a)
        }
        args += ["--optimizer", config.optimizer, "--lr", "\(config.lr)"]
        if let s = config.scheduler { args += ["--scheduler", s] }
        args += ["--seed", "\(config.seed)"]
        if let e = config.evalEvery { args += ["--eval-every", "\(e)"] }
        if warmupCommand != nil {
            args += ["--commands", SweepRunner.folder(p.directory, trial: trial).appendingPathComponent("commands.txt").path]
        }
        return args.map(shellQuoted).joined(separator: " ")
    }
}


/// A word as a shell reads it back: quoted when it holds anything but letters, digits and `-_./:=,`.
func shellQuoted(_ word: String) -> String {
    let plain = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@%")
    if !word.isEmpty && word.allSatisfy({ plain.contains($0) }) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
