import ArgumentParser
import Foundation
import LRModels
import LRTrain
import LRLog

/// The guide's closing table, run for real on this machine.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the guide's four optimizer + scheduler configurations and print its comparison table for this machine.",
        discussion: """
        SGD (lr 0.1, momentum 0.9, wd 1e-4) + StepLR (x0.1 every third of the run); AdamW (lr 1e-3, wd 1e-2); \
        AdamW + cosine annealing; LAMB (lr 1e-3, wd 1e-2, trust-ratio clipping) + linear warmup for 1/15 of the run \
        then cosine. Each over --seeds seeds; every run's log is written so 'lrtop replay' can overlay them.
        Add or replace a configuration with --config 'NAME=OPTIMIZER_SPEC;SCHEDULER_SPEC', e.g. (one argument):

          lrtop compare --config 'LAMB 4e-3=lamb:lr=4e-3;warmup:steps=1 epoch -> cosine'
        """)

    @Option(help: "Epochs per run.") var epochs = 15
    @Option(help: "Seeds per configuration (0, 1, ...).") var seeds = 3
    @Option(help: "Model: mlp or convnet. (default: mlp)", transform: { try ModelKind(name: $0) }) var model = ModelKind.mlp
    @Option(help: "MLP hidden size.") var hidden = 256
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize = 128
    @Option(help: "Target test accuracy for 'epochs to target', in percent or as a fraction.") var target = 88.0
    @Option(name: .customLong("config"), help: "Add or replace a configuration: 'NAME=OPTIMIZER_SPEC;SCHEDULER_SPEC' (repeatable). In the scheduler spec, 'E epoch(s)' and 'run' stand for step counts.")
    var configs: [String] = []
    @Option(help: "Only run the configurations whose names contain one of these (comma separated).") var only: String?
    @Option(help: "Dataset (default: Fashion-MNIST).") var data: String?
    @Option(name: .customLong("out"), help: "Folder for the runs' logs (default: ./runs/compare-DATE_TIME).") var out: String?
    @Option(help: "Runs trained at the same time (each with one BLAS thread).") var jobs = 2
    @Flag(help: "Progress lines instead of the live view.") var headless = false
    @Flag(help: "Print the table as JSON too.") var json = false

    func run() throws {
        guard epochs >= 1, seeds >= 1, jobs >= 1 else { try fail("--epochs, --seeds and --jobs must be at least 1") }
        let targetFraction = target > 1 ? target / 100 : target
        var plan = CompareConfiguration.guide
        for spec in configs {
            do { try CompareConfiguration.merge(spec, into: &plan) } catch { try fail("\(error)") }
        }
        if let only {
            let keys = only.split(separator: ",").map { $0.lowercased().trimmingCharacters(in: .whitespaces) }
            plan = plan.filter { c in keys.contains { c.name.lowercased().contains($0) } }
            guard !plan.isEmpty else { try fail("--only '\(only)' matches no configuration") }
        }
        let outDir = try out.map { URL(fileURLWithPath: $0) } ?? RunDirectory.makeDefault(prefix: "compare-")
        do { try SafeFiles.prepareFolder(outDir, what: "the compare folder", instead: "choose another --out") } catch {
            try fail(error.message)
        }

        // Resolve step counts once from the data (steps per epoch).
        var probe = TrainConfig()
        probe.data = data; probe.batchSize = batchSize; probe.model = model; probe.hidden = [hidden]
        probe.epochs = epochs
        var probeOptions = RunOptions(); probeOptions.writeFiles = false
        let stepsPerEpoch: Int
        do { stepsPerEpoch = try Trainer(config: probe, options: probeOptions).stepsPerEpoch } catch { try fail("\(error)") }

        var jobsList: [CompareJob] = []
        for c in plan {
            for seed in 0..<seeds {
                var cfg = TrainConfig()
                cfg.model = model; cfg.hidden = [hidden]; cfg.batchSize = batchSize; cfg.epochs = epochs
                cfg.data = data; cfg.seed = UInt64(seed); cfg.guardFactor = 0
                do { try c.apply(to: &cfg, stepsPerEpoch: stepsPerEpoch, epochs: epochs) } catch { try fail("\(c.name): \(error)") }
                let slug = c.name.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).joined(separator: "-")
                let runDir = outDir.appendingPathComponent("\(slug)-seed\(seed)")
                jobsList.append(CompareJob(name: c.name, seed: seed, config: cfg, log: runDir.appendingPathComponent("run.jsonl")))
            }
        }
        let live = !headless && isatty(STDOUT_FILENO) == 1
        let view = CompareProgress(jobs: jobsList, stepsPerEpoch: stepsPerEpoch, epochs: epochs, live: live)
        SignalFlag.install()
        let results = CompareRunner(jobs: jobsList, parallel: jobs, target: targetFraction, version: LRTop.version,
                                    observe: { view.update(index: $0, record: $1) }).run()
        view.finish()
        if SignalFlag.received { try fail("interrupted by \(SignalFlag.name); finished runs' logs are in \(outDir.path)", code: 130) }
        if let failure = results.first(where: { $0.error != nil }) {
            try fail("\(failure.job.name) seed \(failure.job.seed): \(failure.error!)")
        }
        let table = CompareTable(results: results, order: plan.map(\.name), target: targetFraction, epochs: epochs)
        printOut(table.render())
        if json { printOut(table.json()) }
        let logs = results.map(\.job.log.path).joined(separator: " ")
        printOut("\nLogs: \(outDir.path)\nOverlay them: lrtop replay \(logs)")
    }
}

struct CompareConfiguration {
    var name: String
    var optimizer: String
    var lr: Double?
    var weightDecay: Double?
    var momentum: Double?
    /// May use `E epochs` / `run` placeholders, resolved to step counts per run.
    var scheduler: String

    static let guide: [CompareConfiguration] = [
        .init(name: "SGD + StepLR", optimizer: "sgd", lr: 0.1, weightDecay: 1e-4, momentum: 0.9,
              scheduler: "step:step_size={third},gamma=0.1"),
        .init(name: "AdamW", optimizer: "adamw", lr: 1e-3, weightDecay: 1e-2, momentum: nil, scheduler: "constant"),
        .init(name: "AdamW + Cosine", optimizer: "adamw", lr: 1e-3, weightDecay: 1e-2, momentum: nil,
              scheduler: "cosine:T_max={run}"),
        .init(name: "LAMB + Warmup + Cosine", optimizer: "lamb:trust_clip=true", lr: 1e-3, weightDecay: 1e-2, momentum: nil,
              scheduler: "{warmup_cosine}"),
    ]

    /// `NAME=OPTIMIZER_SPEC;SCHEDULER_SPEC` replaces the configuration of that name or adds one.
    static func merge(_ text: String, into plan: inout [CompareConfiguration]) throws {
        guard let eq = text.firstIndex(of: "=") else {
            throw CLIError("--config '\(text)': expected NAME=OPTIMIZER_SPEC;SCHEDULER_SPEC, e.g. 'AdamW 3e-3=adamw:lr=3e-3;cosine'")
        }
        let name = text[..<eq].trimmingCharacters(in: .whitespaces)
        let parts = text[text.index(after: eq)...].split(separator: ";", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !name.isEmpty, let opt = parts.first, !opt.isEmpty else {
            throw CLIError("--config '\(text)': a name and an optimizer spec are needed")
        }
        let c = CompareConfiguration(name: name, optimizer: opt, lr: nil, weightDecay: nil, momentum: nil,
                                     scheduler: parts.count > 1 ? parts[1] : "constant")
        if let i = plan.firstIndex(where: { $0.name.lowercased() == name.lowercased() }) { plan[i] = c } else { plan.append(c) }
    }

    func apply(to cfg: inout TrainConfig, stepsPerEpoch: Int, epochs: Int) throws {
        let total = stepsPerEpoch * epochs
        // As the PyTorch reference: StepLR every max(1, E/3) epochs; one epoch of warmup (1/15 of the default run).
        let third = max(1, epochs / 3) * stepsPerEpoch
        let warm = stepsPerEpoch
        var s = scheduler
        s = s.replacingOccurrences(of: "{third}", with: "\(third)")
        s = s.replacingOccurrences(of: "{run}", with: "\(total)")
        s = s.replacingOccurrences(of: "{warmup_cosine}", with: Self.warmupCosine(warm: warm, total: total))
        cfg.optimizer = optimizer
        if let lr { cfg.lr = lr } else { cfg.lr = 1e-3 }
        cfg.weightDecay = weightDecay
        cfg.momentum = momentum
        cfg.scheduler = s
    }

    /// PyTorch's SequentialLR([LinearLR(start_factor=1/warm, total_iters=warm-1), CosineAnnealingLR(T_max=total-warm)],
    /// milestones=[warm]) — the reference's exact schedule.
    static func warmupCosine(warm: Int, total: Int) -> String {
        "linear:start_factor=\(1.0 / Double(warm)),total_iters=\(warm - 1) -> @\(warm) cosine:T_max=\(max(1, total - warm))"
    }
}
