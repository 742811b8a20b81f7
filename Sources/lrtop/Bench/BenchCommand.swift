import ArgumentParser
import Foundation
import LRLog
import LRModels
import LRTrain
import LRTensor

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training throughput (samples/s) on a fixed configuration.",
        discussion: """
        Default: MLP 784-256-10, batch 128, AdamW, Fashion-MNIST, 50 warm-up steps then 1000 timed steps, the best \
        of 3 repeats. Compare with PyTorch: python3 ../shared/reference/torch_reference.py bench.
        """)

    @Option(help: "Model: mlp or convnet. (default: mlp)", transform: { try ModelKind(name: $0) }) var model = ModelKind.mlp
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize = 128
    @Option(help: "MLP hidden size.") var hidden = 256
    @Option(help: "Optimizer.") var optimizer = "adamw"
    @Option(help: "BLAS threads (default: the training default for this batch size).") var threads: Int?
    @Option(help: "Timed steps per repeat.") var steps = 1000
    @Option(help: "Warm-up steps before timing.") var warmup = 50
    @Option(help: "Repeats; the best is reported (the least disturbed by other processes).") var repeats = 3
    @Option(help: "Dataset (default: Fashion-MNIST; synthetic data of the same shape if it is missing).") var data: String?
    @Flag(help: "Also measure with the run log written (its cost to the step).") var log = false
    @Flag(help: "Also measure every BLAS thread count from 1 to the core count.") var sweepThreads = false
    @Flag(help: "Print JSON instead of text.") var json = false
    @Flag(help: "Measure replay instead: load a generated run log and event file, open + first frame, seek, memory.")
    var replay = false
    @Option(name: .customLong("replay-steps"), help: "Steps of the generated run for --replay.") var replaySteps = 1_000_000
    @Option(name: .customLong("replay-only"),
            help: "With --replay: only the base case (loss, LR, 4 TensorBoard tags) or only the metrics case (20 metrics a step).")
    var replayOnly: ReplayBench.Part?
    @Flag(help: "Measure the terminal UI's cost: the same run headless and with the UI on a pseudo-terminal, alternately.")
    var tui = false
    @Option(name: .customLong("fleet"), help: ArgumentHelp("Measure the runs table's data side over the live runs of this machine for SECONDS: time to the first full snapshot, status refreshes per run per second, CPU (bench/runs_bench.py starts the runs).", valueName: "SECONDS"))
    var fleetSeconds: Double?
    @Option(name: .customLong("fleet-expect"), help: "With --fleet: how many runs to wait for before the clock for the first snapshot stops.")
    var fleetExpect = 1

    struct Result: Codable {
        var impl: String
        var model: String
        var batch: Int
        var optimizer: String
        var threads: Int
        var log: Bool
        var dataset: String
        var steps: Int
        var steps_per_s: Double
        var samples_per_s: Double
        var ms_per_step: Double

        var line: String {
            String(format: "lrtop bench: %@ batch %d, %@, %d BLAS thread(s), log %@: %.0f samples/s, %.1f steps/s (%.3f ms/step)",
                   model, batch, optimizer, threads, log ? "on" : "off", samples_per_s, steps_per_s, ms_per_step)
        }
    }

    func run() throws {
        if replay {
            var bench = ReplayBench(steps: replaySteps)
            if let only = replayOnly { bench.parts = [only] }
            try bench.run(json: json)
            return
        }
        if let fleetSeconds {
            try FleetBench(seconds: fleetSeconds, expected: fleetExpect).run(json: json)
            return
        }
        if tui {
            try TUIOverheadBench(steps: max(steps, 1000), repeats: repeats, data: data, batchSize: batchSize,
                                 threads: threads ?? TrainOptions.defaultThreads(batchSize: batchSize)).run(json: json)
            return
        }
        var results: [Result] = []
        let threadCounts = sweepThreads ? Array(1...max(1, ProcessInfo.processInfo.activeProcessorCount))
                                        : [threads ?? TrainOptions.defaultThreads(batchSize: batchSize)]
        for t in threadCounts {
            results.append(try measure(threads: t, withLog: false))
            if log { results.append(try measure(threads: t, withLog: true)) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = results.count == 1 ? try encoder.encode(results[0]) : try encoder.encode(results)
            printOut(String(decoding: data, as: UTF8.self))
        } else {
            for r in results { printOut(r.line) }
        }
    }

    func measure(threads: Int, withLog: Bool) throws -> Result {
        var config = TrainConfig()
        config.model = model
        config.hidden = [hidden]
        config.batchSize = batchSize
        config.optimizer = optimizer
        config.lr = 1e-3
        config.weightDecay = optimizer == "adamw" ? 1e-2 : nil
        config.scheduler = "constant"
        config.epochs = 1_000
        config.guardFactor = 0
        config.data = data
        var options = RunOptions()
        options.threads = threads
        options.evaluate = false
        options.writeFiles = withLog
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-bench-\(getpid())")
        if withLog { options.runDirectory = tmp }
        defer { if withLog { try? FileManager.default.removeItem(at: tmp) } }
        let trainer: Trainer
        do { trainer = try Trainer(config: config, options: options) } catch { try fail("\(error)") }
        _ = trainer.timeSteps(warmup)
        var best = Double.infinity
        for _ in 0..<max(1, repeats) { best = min(best, trainer.timeSteps(steps)) }
        let stepsPerSec = Double(steps) / best
        return Result(impl: "lrtop \(LRTop.version)", model: model == .mlp ? "mlp 784-\(hidden)-10" : model.rawValue,
                      batch: batchSize, optimizer: optimizer, threads: threads, log: withLog,
                      dataset: trainer.datasetName, steps: steps, steps_per_s: stepsPerSec,
                      samples_per_s: stepsPerSec * Double(batchSize), ms_per_step: 1000 / stepsPerSec)
    }
}

extension ReplayBench.Part: ExpressibleByArgument {}
