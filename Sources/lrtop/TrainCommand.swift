import ArgumentParser
import Foundation
import LRTrain
import LRLog
import LRTUI
import LRCommand
import LRServe

struct Train: TypedArgumentsCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model: live in the terminal UI (default) or headless with progress lines.",
        discussion: """
        Every run gets a folder (default ./runs/DATE_TIME) with its JSON Lines log (docs/runlog.md) and checkpoints.
        Steer it from the keyboard, from the ':' prompt, or with a --commands script of '@STEP COMMAND' lines \
        (docs/steering.md), e.g. '@500 lr *0.1'.
        """)

    @OptionGroup var options: TrainOptions

    @Option(help: "A config file of 'option = value' lines (optimizer, scheduler, group, lr, epochs ...); options on the command line win.")
    var config: String?
    @Flag(help: "Train without the terminal UI, printing progress lines and a summary.")
    var headless = false
    @Option(name: .customLong("run-dir"), help: "The run's folder for its log and checkpoints (default: ./runs/DATE_TIME).")
    var runDir: String?
    @Option(help: "Write the run log to this file instead of RUN_DIR/run.jsonl.")
    var log: String?
    @Option(help: "A script of '@STEP COMMAND' lines applied at those steps (e.g. '@500 lr *0.1').")
    var commands: String?
    @Option(help: "Start from these weights with a fresh optimizer and schedule (fine-tuning): an lrtop checkpoint, or a .safetensors file of the PyTorch twin's state_dict() (see 'lrtop export-weights').")
    var `init`: String?
    @Option(help: "Continue the run saved in this checkpoint exactly where it stopped. Its config is used; --max-steps, --epochs, --eval-every, --checkpoint-every/-keep and the guard may change, --lr applies as an override; with --run-dir of its own folder the log continues.")
    var resume: String?
    @Flag(help: "Overwrite the log and checkpoints of an existing run folder (a new run never does without it).")
    var force = false
    @Option(help: "Theme name from 'lrtop themes' (the UI only).")
    var theme: String?
    @OptionGroup var terminal: TerminalFlags
    @Flag(name: .customLong("exit-when-done"), help: "Close the UI when training ends instead of waiting for q (scripted demos, benchmarks).")
    var exitWhenDone = false
    @Option(help: "How fast the run may go: 'auto' (the UI's default: the run lasts at least 2.5 minutes, so there is time to steer it), 'off' (full speed; --headless's default), or at most N steps a second ('20/s'). '<' '>' and ':pace' change it live.")
    var pace: String?
    @Option(name: .customLong("progress-every"), help: "Headless: also print a line every N steps (0: only at epoch ends).")
    var progressEvery = 0
    @Option(name: .customLong("dump-batch-order"), help: "Write the sample order of every epoch's batches to this file (JSON Lines) and exit without training (bench/parity.py).")
    var dumpBatchOrder: String?
    @Option(name: .customLong("trace-params"), help: "Write each step's loss and every parameter's L2 norm to this file (JSON Lines; bench/parity.py).")
    var traceParams: String?

    func validate() throws {
        if `init` != nil && resume != nil {
            throw ValidationError("--init and --resume exclude each other: --init starts a new run from weights, --resume continues a run")
        }
        _ = try paceSetting()
    }

    /// How long the UI's first run lasts at least, unless `--pace` says otherwise: long enough to try the keys.
    static let autoPaceSeconds = 150.0

    /// `--pace` as a setting (default: `auto` in the UI, full speed headless).
    func paceSetting() throws -> PaceSetting {
        guard let text = pace?.trimmingCharacters(in: .whitespaces).lowercased() else {
            return headless ? .off : .lasting(seconds: Self.autoPaceSeconds)
        }
        if text == "auto" { return .lasting(seconds: Self.autoPaceSeconds) }
        switch try? CommandParser.parse("pace " + text) {
        case .pace(.off)?: return .off
        case .pace(.set(let rate))?: return .stepsPerSecond(rate)
        default:
            throw ValidationError("invalid --pace '\(pace ?? "")': use 'auto' (the run lasts at least 2.5 minutes), 'off' (full speed) or steps a second, e.g. '20/s'")
        }
    }

    func run(arguments: [String]) throws { try run(arguments: arguments, explicit: Train.configKeys(in: arguments)) }

    /// The config keys (`TrainConfig.flattened` names) that `args` set: what `--resume` must apply or refuse.
    static func configKeys(in args: [String]) -> Set<String> {
        Set(args.compactMap { arg in
            guard arg.hasPrefix("--") else { return nil }
            let name = arg.dropFirst(2).split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            return TrainConfig.configKey(cliName: name)
        })
    }

    private func run(arguments: [String], explicit: Set<String>) throws {
        if let path = config {
            // Re-parse with the file's options first, so the command line's own options come later and win.
            let fileArgs: [String]
            do { fileArgs = try ConfigFile.arguments(path: path) } catch { try fail("\(error)") }
            var argv = arguments
            if let i = argv.firstIndex(of: "--config"), i + 1 < argv.count { argv.removeSubrange(i...(i + 1)) }
            argv.removeAll { $0.hasPrefix("--config=") }
            var merged: Train
            do { merged = try Train.parse(fileArgs + argv) } catch {
                try fail("\(path): \(Train.message(for: error))")
            }
            merged.config = nil
            try merged.run(arguments: argv, explicit: explicit.union(Train.configKeys(in: fileArgs)))
            return
        }
        let config = try options.config()
        if let path = dumpBatchOrder {
            do { try BatchOrderFile.write(config: config, to: path) } catch { try fail("\(error)") }
            printOut("lrtop: wrote the batch order to \(path)")
            return
        }
        var runOptions = RunOptions()
        if let path = traceParams {
            let trace: ParameterTrace
            do { trace = try ParameterTrace(path: path) } catch { try fail("\(error)") }
            runOptions.parameterObserver = { trace.record($0, $1) }
        }
        runOptions.runDirectory = runDir.map { URL(fileURLWithPath: $0) }
        runOptions.logPath = log.map { URL(fileURLWithPath: $0) }
        runOptions.initCheckpoint = `init`.map { URL(fileURLWithPath: $0) }
        runOptions.resumeCheckpoint = resume.map { URL(fileURLWithPath: $0) }
        runOptions.resumeChanges = explicit
        runOptions.force = force
        runOptions.threads = options.blasThreads
        runOptions.lrtopVersion = LRTop.version
        runOptions.pace = try paceSetting()
        if let path = commands {
            let text: String
            do { text = try FileProblem.readText(path, what: "commands script") } catch { try fail("\(error)") }
            do { runOptions.script = try CommandScript.parse(text, name: path) } catch { try fail(error.description) }
        }
        if headless {
            try runHeadless(config: config, options: runOptions)
        } else {
            guard isatty(STDOUT_FILENO) == 1, isatty(STDIN_FILENO) == 1 else {
                try fail("the terminal UI needs a terminal (stdout is not one): run 'lrtop train --headless' for progress lines instead")
            }
            try runInteractive(config: config, options: runOptions, theme: theme)
        }
    }

    private func runHeadless(config: TrainConfig, options: RunOptions) throws {
        var options = options
        options.headless = true
        let printer = ProgressPrinter(every: progressEvery)
        options.observer = { printer.handle($0) }
        SignalFlag.install()
        // Served like a bridged run: `lrtop attach RUN_DIR` steers it, `lrtop ls` lists it.
        let served = ServedRun.prepare(options: &options, config: config, warn: { printErr($0) })
        defer { served?.close() }
        let trainer: Trainer
        do { trainer = try Trainer(config: config, options: options) } catch { try fail("\(error)") }
        served?.start(trainer: trainer)
        if let notice = trainer.datasetNotice { printErr("lrtop: \(notice)") }
        for warning in trainer.setupWarnings { printErr("lrtop: warning: \(warning)") }
        printer.totalSteps = trainer.totalSteps
        printer.stepsPerEpoch = trainer.stepsPerEpoch
        // What runs is the trainer's config (a resumed run's comes from its checkpoint), never the options typed.
        let c = trainer.config
        let what = trainer.step > 0 ? "resuming \(c.model) at step \(trainer.step) of \(trainer.totalSteps)"
            : "training \(c.model) on \(trainer.datasetName): \(trainer.totalSteps) steps"
        var line = "lrtop: \(what) (\(trainer.stepsPerEpoch)/epoch), \(c.optimizer) lr=\(c.lr), scheduler \(c.scheduler ?? "default")"
        if let lr = trainer.resumeLR { line += "; LR overridden to \(lr) from step \(trainer.step)" }
        printer.line(line)
        if let dir = trainer.runDirectory { printer.line("lrtop: run folder \(dir.path)") }
        if let logURL = trainer.logURL {
            printer.line("lrtop: log \(logURL.path)" + (trainer.step > 0 && FileProblem.size(logURL.path) ?? 0 > 0 ? " (continued)" : ""))
        }
        if served != nil, let dir = trainer.runDirectory { printer.line("lrtop: steer it with: lrtop attach \(dir.path)") }
        let end = trainer.run()
        served?.close()
        printer.summary(end)
        if let logURL = trainer.logURL { printer.line("lrtop: replay with: lrtop replay \(logURL.path)") }
        switch end.reason {
        case .completed, .stopped: return
        case .interrupted: throw ExitCode(128 + (SignalFlag.number > 0 ? SignalFlag.number : SIGINT))
        case .failed: try fail(end.message ?? "the run failed")
        case .diverged: throw ExitCode(2)
        }
    }
}

extension Train {
    /// The interactive session: the trainer on its own thread, the dashboard on this one.
    /// With `findLR`, the dashboard starts the range test at once and opens its panel (`lrtop find-lr`).
    func runInteractive(config: TrainConfig, options: RunOptions, theme: String?, findLR: LRRangeSettings? = nil) throws {
        // A parent that started us with these signals blocked (some process managers do) would make Ctrl-C and
        // SIGTERM unable to restore the terminal.
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGWINCH] { sigaddset(&signals, s) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        // Before any thread starts: `d` needs a process the shell can see exit while the run goes on.
        let detachLink = Detach.split()
        var options = options
        options.headless = false
        options.publishRecords = true
        let detachedProgress = DetachedProgress(every: max(progressEvery, 0))
        let earlier = options.observer
        options.observer = { record in
            earlier?(record)
            detachedProgress.handle(record)
        }
        let served = ServedRun.prepare(options: &options, config: config, warn: { printErr($0) })
        defer { served?.close() }
        let (loadedTheme, notice) = try Themes.resolve(theme)
        let trainer: Trainer
        do { trainer = try Trainer(config: config, options: options) } catch { try fail("\(error)") }
        served?.start(trainer: trainer)
        let finished = DispatchSemaphore(value: 0)
        let box = EndBox()
        let thread = Thread {
            box.end = trainer.run()
            finished.signal()
        }
        thread.stackSize = 16 << 20
        thread.name = "lrtop-trainer"
        thread.start()

        // The run as people call it: its --name, else its folder (what `replay` and `--summary` call it too).
        let name = trainer.config.name ?? trainer.runDirectory?.lastPathComponent ?? "run"
        let title = "\(name) · \(config.model) · \(trainer.datasetName)"
        let source = TrainerSource(channel: trainer.channel, title: title, canDetach: served != nil && detachLink != nil)
        // Each frame can stall a BLAS thread mid-product on a 2-core machine (measured with `lrtop bench --tui`:
        // about 0.3% of training speed per frame per second), so the view refreshes 4 times a second while you
        // watch and 15 times a second for two seconds after a key. Keys are read the moment they arrive.
        var tuiOptions = terminal.applied(to: TUIOptions(maxFPS: 15, pollMs: 250, startupNotice: notice ?? trainer.datasetNotice))
        tuiOptions.idleFPS = 4
        tuiOptions.exitWhenFinished = exitWhenDone
        tuiOptions.findLRAtStart = findLR
        let reason: ExitReason
        do {
            reason = try TUIApp.run(Dashboard(source: source, theme: loadedTheme, themeStore: Themes.store), options: tuiOptions)
        } catch {
            stop(trainer, finished, signal: nil)
            try fail("\(error)")
        }
        // The terminal is restored here.
        if reason == .detached, let detachLink {
            let console = (trainer.runDirectory ?? trainer.logURL?.deletingLastPathComponent())
                .map { $0.appendingPathComponent("console.log").path } ?? "/dev/null"
            Detach.goHeadless(name: name, console: console, link: detachLink)
            detachedProgress.start(totalSteps: trainer.totalSteps, stepsPerEpoch: trainer.stepsPerEpoch)
            try finishDetached(trainer, finished, box, served)
            return
        }
        // End the run cleanly: log closed, end record and final checkpoint written.
        var signal: Int32? = nil
        if case .interrupted(let s) = reason { signal = s }
        stop(trainer, finished, signal: signal)
        if let end = box.end {
            ProgressPrinter(every: 0).summary(end)
            if end.reason == .diverged || end.reason == .failed { printErr("lrtop: \(end.message ?? end.reason.rawValue)") }
        }
        if let dir = trainer.runDirectory { printOut("lrtop: run folder \(dir.path)") }
        if let log = trainer.logURL { printOut("lrtop: replay with: lrtop replay \(log.path)") }
        if let signal { throw ExitCode(128 + signal) }
    }

    /// The run goes on headless after `d`: nobody drains the records and answers the UI took (they are thrown
    /// away each second, so they cannot pile up), the socket serves viewers, and the end is written to the console.
    private func finishDetached(_ trainer: Trainer, _ finished: DispatchSemaphore, _ box: EndBox,
                                _ served: ServedRun?) throws {
        while finished.wait(timeout: .now() + 1) == .timedOut {
            _ = trainer.channel.drain()
            _ = trainer.channel.takeReplies()
        }
        served?.close()
        if let end = box.end {
            ProgressPrinter(every: 0).summary(end)
            if end.reason == .interrupted { throw ExitCode(128 + (SignalFlag.number > 0 ? SignalFlag.number : SIGTERM)) }
            if end.reason == .diverged || end.reason == .failed { throw ExitCode(1) }
        }
    }

    private func stop(_ trainer: Trainer, _ finished: DispatchSemaphore, signal: Int32?) {
        if let signal { SignalFlag.raise(signal) }
        trainer.channel.send(.stop)
        if finished.wait(timeout: .now() + 60) == .timedOut {
            trainer.flushLog()
            printErr("lrtop: the trainer did not stop within 60 s; its log was flushed")
        }
    }
}

final class EndBox: @unchecked Sendable {
    var end: EndRecord?
}
