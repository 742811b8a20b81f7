import ArgumentParser
import Foundation
import LRTrain
import LRLog
import LRTUI

struct Train: ParsableCommand {
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
    @Option(help: "Continue the run saved in this checkpoint exactly where it stopped (its config is used).")
    var resume: String?
    @Option(help: "Theme name from 'lrtop themes' (the UI only).")
    var theme: String?
    @OptionGroup var terminal: TerminalFlags
    @Flag(name: .customLong("exit-when-done"), help: "Close the UI when training ends instead of waiting for q (scripted demos, benchmarks).")
    var exitWhenDone = false
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
    }

    func run() throws {
        if let path = config {
            // Re-parse with the file's options first, so the command line's own options come later and win.
            let fileArgs: [String]
            do { fileArgs = try ConfigFile.arguments(path: path) } catch { fail("\(error)") }
            var argv = Array(CommandLine.arguments.dropFirst())
            if argv.first == "train" { argv.removeFirst() }
            if let i = argv.firstIndex(of: "--config"), i + 1 < argv.count { argv.removeSubrange(i...(i + 1)) }
            argv.removeAll { $0.hasPrefix("--config=") }
            var merged: Train
            do { merged = try Train.parse(fileArgs + argv) } catch {
                fail("\(path): \(Train.message(for: error))")
            }
            merged.config = nil
            try merged.run()
            return
        }
        let config = try options.config(defaultScheduler: headless ? "constant" : Defaults.interactiveScheduler)
        if let path = dumpBatchOrder {
            do { try BatchOrderFile.write(config: config, to: path) } catch { fail("\(error)") }
            print("lrtop: wrote the batch order to \(path)")
            return
        }
        var runOptions = RunOptions()
        if let path = traceParams {
            let trace: ParameterTrace
            do { trace = try ParameterTrace(path: path) } catch { fail("\(error)") }
            runOptions.parameterObserver = { trace.record($0, $1) }
        }
        runOptions.runDirectory = runDir.map { URL(fileURLWithPath: $0) }
        runOptions.logPath = log.map { URL(fileURLWithPath: $0) }
        runOptions.initCheckpoint = `init`.map { URL(fileURLWithPath: $0) }
        runOptions.resumeCheckpoint = resume.map { URL(fileURLWithPath: $0) }
        runOptions.threads = options.blasThreads
        runOptions.lrtopVersion = LRTop.version
        if let path = commands {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                fail("cannot read the commands script \(path): check the path")
            }
            do { runOptions.script = try CommandScript.parse(text, name: path) } catch { fail(error.description) }
        }
        if headless {
            try runHeadless(config: config, options: runOptions)
        } else {
            guard isatty(STDOUT_FILENO) == 1, isatty(STDIN_FILENO) == 1 else {
                fail("the terminal UI needs a terminal (stdout is not one): run 'lrtop train --headless' for progress lines instead")
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
        let trainer: Trainer
        do { trainer = try Trainer(config: config, options: options) } catch { fail("\(error)") }
        if let notice = trainer.datasetNotice { printErr("lrtop: \(notice)") }
        printer.totalSteps = trainer.totalSteps
        printer.stepsPerEpoch = trainer.stepsPerEpoch
        print("lrtop: training \(config.model) on \(trainer.datasetName): \(trainer.totalSteps) steps "
              + "(\(trainer.stepsPerEpoch)/epoch), \(config.optimizer) lr=\(config.lr), scheduler \(config.scheduler)")
        if let dir = trainer.runDirectory { print("lrtop: run folder \(dir.path)") }
        if let logURL = trainer.logURL { print("lrtop: log \(logURL.path)") }
        let end = trainer.run()
        printer.summary(end)
        if let logURL = trainer.logURL { print("lrtop: replay with: lrtop replay \(logURL.path)") }
        switch end.reason {
        case .completed, .stopped: return
        case .interrupted: throw ExitCode(130)
        case .diverged, .failed: throw ExitCode(2)
        }
    }
}

enum Defaults {
    /// The interactive session's schedule: warmup + cosine, sized to the run (`TrainConfig.defaultSchedule`).
    static let interactiveScheduler = TrainConfig.defaultScheduler
}

/// Prints headless progress: a line per epoch (and every N steps), errors and guard trips as they happen.
final class ProgressPrinter: @unchecked Sendable {
    let every: Int
    var totalSteps = 0
    var stepsPerEpoch = 1
    private var lastStep: StepRecord?
    init(every: Int) { self.every = every }

    func handle(_ record: RunRecord) {
        switch record {
        case .step(let s):
            lastStep = s
            if every > 0 && s.step % every == 0 {
                print(String(format: "step %6d/%d  epoch %d  loss %.4f  lr %@  grad %.3g  %.0f samples/s",
                             s.step, totalSteps, s.epoch + 1, s.loss, lrText(s.lrs), s.gradNorm, s.samplesPerSec))
            }
        case .eval(let e):
            let s = lastStep
            print(String(format: "epoch %d  step %6d/%d  train_loss %.4f  val_loss %.4f  val_acc %.2f%%  lr %@  %.0f samples/s",
                         e.step == 0 ? 0 : (e.step - 1) / max(1, stepsPerEpoch) + 1, e.step, totalSteps, s?.loss ?? .nan,
                         e.loss, e.accuracy * 100, lrText(s?.lrs ?? []), s?.samplesPerSec ?? 0))
        case .event(let ev):
            switch ev.kind {
            case .error: print("step \(ev.step): command '\(ev.text)' rejected: \(ev.message ?? "")")
            case .guardTrip: print("step \(ev.step): divergence guard: \(ev.message ?? "")")
            case .command:
                print("step \(ev.step): \(ev.text)  lr \(lrText(ev.lrsBefore)) → \(lrText(ev.lrsAfter))" + (ev.message.map { "  (\($0))" } ?? ""))
            case .rollback, .info: if let m = ev.message { print("step \(ev.step): \(m)") }
            case .checkpoint: break
            }
        case .header, .end: break
        }
        flushStdout()
    }

    func summary(_ end: EndRecord) {
        var line = "lrtop: \(end.reason) at step \(end.step)"
        if let l = end.finalLoss { line += String(format: ", final train loss %.4f", l) }
        if let a = end.finalAccuracy { line += String(format: ", test accuracy %.2f%%", a * 100) }
        if let b = end.bestAccuracy { line += String(format: " (best %.2f%%)", b * 100) }
        line += String(format: ", %.1f s", end.wallTime)
        if let m = end.message { line += " — \(m)" }
        print(line)
    }
}

func lrText(_ lrs: [Double]) -> String {
    lrs.map { String(format: "%.3g", $0) }.joined(separator: ",")
}

extension Train {
    /// The interactive session: the trainer on its own thread, the dashboard on this one.
    func runInteractive(config: TrainConfig, options: RunOptions, theme: String?) throws {
        // A parent that started us with these signals blocked (some process managers do) would make Ctrl-C and
        // SIGTERM unable to restore the terminal.
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGWINCH] { sigaddset(&signals, s) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        var options = options
        options.headless = false
        options.publishRecords = true
        let (loadedTheme, notice) = Themes.resolve(theme)
        let trainer: Trainer
        do { trainer = try Trainer(config: config, options: options) } catch { fail("\(error)") }
        let finished = DispatchSemaphore(value: 0)
        let box = EndBox()
        let thread = Thread {
            box.end = trainer.run()
            finished.signal()
        }
        thread.stackSize = 16 << 20
        thread.name = "lrtop-trainer"
        thread.start()

        let title = "\(config.model) · \(trainer.datasetName) · \(trainer.runDirectory?.lastPathComponent ?? "run")"
        let source = TrainerSource(channel: trainer.channel, title: title)
        // Each frame can stall a BLAS thread mid-product on a 2-core machine (measured with `lrtop bench --tui`:
        // about 0.3% of training speed per frame per second), so the view refreshes 4 times a second while you
        // watch and 15 times a second for two seconds after a key. Keys are read the moment they arrive.
        var tuiOptions = TUIOptions(maxFPS: 15, pollMs: 250, themeStore: Themes.store,
                                    startupNotice: notice ?? trainer.datasetNotice)
        tuiOptions.idleFPS = 4
        tuiOptions.mouse = !terminal.noMouse
        tuiOptions.ascii = terminal.ascii
        tuiOptions.exitWhenFinished = exitWhenDone
        let reason: ExitReason
        do {
            reason = try TUIApp.run(source: source, theme: loadedTheme, options: tuiOptions)
        } catch {
            stop(trainer, finished, signal: nil)
            fail("\(error)")
        }
        // The terminal is restored here. End the run cleanly: log closed, end record and final checkpoint written.
        var signal: Int32? = nil
        if case .interrupted(let s) = reason { signal = s }
        stop(trainer, finished, signal: signal)
        if let end = box.end {
            ProgressPrinter(every: 0).summary(end)
            if end.reason == .diverged || end.reason == .failed { printErr("lrtop: \(end.message ?? end.reason.rawValue)") }
        }
        if let dir = trainer.runDirectory { print("lrtop: run folder \(dir.path)") }
        if let log = trainer.logURL { print("lrtop: replay with: lrtop replay \(log.path)") }
        if let signal { throw ExitCode(128 + signal) }
    }

    private func stop(_ trainer: Trainer, _ finished: DispatchSemaphore, signal: Int32?) {
        if let signal { SignalFlag.raise(signal) }
        trainer.channel.send("stop")
        if finished.wait(timeout: .now() + 60) == .timedOut {
            trainer.flushLog()
            printErr("lrtop: the trainer did not stop within 60 s; its log was flushed")
        }
    }
}

final class EndBox: @unchecked Sendable {
    var end: EndRecord?
}
