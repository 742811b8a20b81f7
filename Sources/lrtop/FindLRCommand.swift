import ArgumentParser
import Foundation
import LRTrain
import LRLog
import LRTUI
import LRCommand

/// `lrtop find-lr`: the LR range test before training. Headless it prints the suggestions and the `lrtop train`
/// line that trains with the pick; in the terminal UI it sweeps, draws the curve, and trains with the LR picked on it.
struct FindLR: TypedArgumentsCommand {
    static let configuration = CommandConfiguration(
        commandName: "find-lr",
        abstract: "LR range test (fastai's lr_find): sweep the LR, suggest one, train with the pick.",
        discussion: """
        From the run's first step, trains with the LR growing exponentially from --start to --end over --steps \
        steps (fastai's defaults: 1e-7, 10, 100), stopping early once the smoothed loss passes 4x its minimum. \
        The suggestions are fastai's valley (the default), steep, min/10 and slide, and Lightning's suggestion(). \
        Takes the options of 'lrtop train'. The sweep is logged as a sub-run of a run folder (default \
        ./runs/find-lr_DATE_TIME) that 'lrtop replay' shows.
        """)

    @OptionGroup var options: TrainOptions
    @Option(help: "The first LR of the sweep.")
    var start = LRRangeSettings.defaultStart
    @Option(help: "The LR the sweep grows towards.")
    var end = LRRangeSettings.defaultEnd
    @Option(help: "Steps of the sweep (6 to 10000).")
    var steps = LRRangeSettings.defaultSteps
    @Option(help: "The suggestion the printed 'lrtop train' line uses: valley, steep, min, slide or lightning.")
    var pick = "valley"
    @Flag(help: "Print the suggestions and a 'lrtop train' line instead of opening the terminal UI.")
    var headless = false
    @Option(name: .customLong("run-dir"), help: "The run folder for the log and the sweep's sub-run (default: ./runs/find-lr_DATE_TIME).")
    var runDir: String?
    @Option(help: "Sweep from these weights (fine-tuning): an lrtop checkpoint or a .safetensors state_dict, as 'lrtop train --init'.")
    var `init`: String?
    @Flag(help: "Overwrite the log of an existing run folder.")
    var force = false
    @Option(help: "Theme name from 'lrtop themes' (the UI only).")
    var theme: String?
    @OptionGroup var terminal: TerminalFlags

    static let picks = ["valley", "steep", "min", "slide", "lightning"]

    /// The settings, checked by the command language's own rules so both say the same about bad values.
    func settings() throws -> LRRangeSettings {
        let settings = LRRangeSettings(start: start, end: end, steps: steps)
        do { try settings.check() } catch {
            throw ValidationError(error.description.replacingOccurrences(of: "find-lr ", with: "--")
                .replacingOccurrences(of: "start=", with: "--start ").replacingOccurrences(of: "end=", with: "--end "))
        }
        return settings
    }

    func validate() throws {
        _ = try settings()
        guard Self.picks.contains(pick) else {
            throw ValidationError("unknown --pick '\(pick)': choose one of \(Self.picks.joined(separator: ", "))")
        }
    }

    func run(arguments: [String]) throws {
        let settings = try settings()
        let config = try options.config()
        var runOptions = RunOptions()
        runOptions.force = force
        runOptions.threads = options.blasThreads
        runOptions.lrtopVersion = LRTop.version
        runOptions.evaluate = false
        runOptions.initCheckpoint = `init`.map { URL(fileURLWithPath: $0) }
        do {
            runOptions.runDirectory = try runDir.map { URL(fileURLWithPath: $0) } ?? RunDirectory.makeDefault(prefix: "find-lr_")
        } catch { try fail("\(error)") }
        if headless {
            try runHeadless(config: config, options: runOptions, settings: settings, arguments: arguments)
        } else {
            guard isatty(STDOUT_FILENO) == 1, isatty(STDIN_FILENO) == 1 else {
                try fail("the terminal UI needs a terminal (stdout is not one): run 'lrtop find-lr --headless' instead")
            }
            // The run waits at step 0 while the sweep runs and the person picks; enter applies the pick and trains.
            runOptions.evaluate = true
            runOptions.lrBeforeFirstStepIsBase = true
            runOptions.script = CommandScript(entries: [.init(step: 0, command: .pause)], name: "find-lr")
            var train = try Train.parse([])
            train.terminal = terminal
            try train.runInteractive(config: config, options: runOptions, theme: theme, findLR: settings)
        }
    }

    private func runHeadless(config: TrainConfig, options: RunOptions, settings: LRRangeSettings,
                             arguments: [String]) throws {
        var options = options
        options.headless = true
        SignalFlag.install()
        let box = EventBox()
        options.observer = { if case .event(let e) = $0 { box.events.append(e) } }
        let trainer: Trainer
        do { trainer = try Trainer(config: config, options: options) } catch { try fail("\(error)") }
        if let notice = trainer.datasetNotice { printErr("lrtop: \(notice)") }
        let c = trainer.config
        printOut("lrtop: find-lr on \(c.model) · \(trainer.datasetName): LR \(LRRangeCurve.format(settings.start)) → "
              + "\(LRRangeCurve.format(settings.end)) over up to \(settings.steps) steps (\(c.optimizer), batch \(c.batchSize))")
        guard let result = trainer.runRangeTestOnly(settings) else {
            let why = box.events.last { $0.kind == .error }?.message ?? "the sweep did not run"
            try fail(why)
        }
        let curve = result.curve
        printOut(String(format: "lrtop: %d steps in %.2f s, ", curve.count, result.seconds) + (curve.stop?.text ?? ""))
        let named = curve.suggestions.named
        guard !named.isEmpty else {
            try fail("too few points for a suggestion (\(curve.count)): give more --steps or a wider --start/--end")
        }
        let picked = named.first { $0.name == (pick == "min" ? "min/10" : pick) } ?? named[0]
        printOut("")
        printOut("  suggestion  lr         loss")
        for s in named {
            let loss = curve.loss(at: s.lr).map { String(format: "%.4f", $0) } ?? "--"
            let mark = s.name == picked.name ? "  ← pick" : ""
            printOut("  " + s.name.padding(toLength: 10, withPad: " ", startingAt: 0) + "  "
                  + LRRangeCurve.format(s.lr).padding(toLength: 9, withPad: " ", startingAt: 0) + "  " + loss + mark)
        }
        printOut("")
        if let dir = trainer.runDirectory, let folder = result.folder {
            printOut("lrtop: sweep logged in \(dir.appendingPathComponent(folder).path)/log.jsonl; see it with: lrtop replay \(dir.path)")
        }
        printOut(Self.trainLine(lr: picked.lr, arguments: arguments))
    }

    /// `lrtop train` with the options typed after `find-lr` (the find-lr ones left out) and `--lr PICK`.
    static func trainLine(lr: Double, arguments: [String]) -> String {
        let args = arguments
        let dropWithValue: Set<String> = ["--start", "--end", "--steps", "--pick", "--run-dir", "--lr", "--theme"]
        let dropFlag: Set<String> = ["--headless", "--force", "--ascii", "--no-mouse"]
        var kept: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            let name = a.split(separator: "=", maxSplits: 1).first.map(String.init) ?? a
            if dropWithValue.contains(name) { i += a.contains("=") ? 1 : 2; continue }
            if dropFlag.contains(a) { i += 1; continue }
            kept.append(a.contains(" ") || a.isEmpty ? "'\(a)'" : a)
            i += 1
        }
        return (["lrtop", "train"] + kept + ["--lr", LRRangeCurve.format(lr)]).joined(separator: " ")
    }
}

final class EventBox: @unchecked Sendable {
    var events: [EventRecord] = []
}
