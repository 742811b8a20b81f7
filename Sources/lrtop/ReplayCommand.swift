import ArgumentParser
import Foundation
import LRLog
import LRTUI

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay runs in the terminal UI, or print a table of their results (--summary).",
        discussion: """
        A run is an lrtop .jsonl log, a TensorBoard event file or a folder of them, or a CSV (Lightning metrics.csv, \
        or any CSV with a step column). Several runs are overlaid in one chart, each in its own colour. \
        HOST:RUN_DIR replays a run on another host: its logs are copied over your ssh (no sshfs).

        The replay opens at the end of the run, with everything drawn. Keys: space play/pause (from the start at the \
        end), ←/→ seek 1% of the run, pgup/pgdn 10%, home/G start/end, ,/. previous/next event, n one step, </> \
        slower/faster, : go to a step ('1200', 'goto end', 'seek -500', 'speed x50'), ? every key, q quit.
        Speed xN plays N steps per frame at 20 frames a second (20·N steps/s): x1 … x1000.
        """)

    enum Align: String, ExpressibleByArgument, CaseIterable { case step, walltime }

    @OptionGroup var inputs: RunInputs
    @Flag(help: "Print a table (final and best loss and accuracy, steps, interventions, how it ended) without the UI.")
    var summary = false
    @Option(help: ArgumentHelp("With --summary: a table of this metric instead (values, steps, last, min, max, mean; "
                               + "repeatable). Names as the metrics grid shows them: train/loss, val/acc, a tag, a run's own.",
                               valueName: "name"))
    var metric: [String] = []
    @Option(help: "Theme name from 'lrtop themes', or a .theme file.")
    var theme: String?
    @Option(help: "Line several runs up by step (default) or by wall time since each started (walltime).")
    var align: Align = .step
    @Option(help: "Playback speed xN, N steps per frame: 1 to 1000 (default: the whole run in 30 s at most).")
    var speed: Int?
    @Option(help: "Open with the cursor at this step (default: the end, the whole run drawn).")
    var at: Int?
    @Flag(help: "Start playing at once (from --at, else from the start).")
    var play = false
    @OptionGroup var terminal: TerminalFlags

    func validate() throws {
        if !metric.isEmpty && !summary {
            throw ValidationError("--metric goes with --summary (the replay UI shows every metric: press m)")
        }
        if let s = speed, !(1...1000).contains(s) {
            throw ValidationError("--speed \(s): choose 1 to 1000 (x1 plays 20 steps a second, x1000 20,000)")
        }
    }

    /// `--summary --metric NAME ...`: the metrics' table, or one line naming the metrics there are.
    func summarizeMetrics(_ inputs: RunInputs) throws {
        let runs = RunInputs.nameBranches(RunNames.assign(try inputs.load()))
        switch RunSummary.metricTable(runs, metrics: metric) {
        case .success(let table): printOut(table)
        case .failure(let problem): try fail(problem.message)
        }
    }

    func run() throws {
        var inputs = inputs
        inputs.runs = try RemoteReplay.localize(inputs.runs)
        if summary {
            if !metric.isEmpty { return try summarizeMetrics(inputs) }
            let runs = RunInputs.nameBranches(RunNames.assign(try inputs.load()))
            printOut(RunSummary.table(runs))
            return
        }
        guard isatty(STDOUT_FILENO) == 1, isatty(STDIN_FILENO) == 1 else {
            try fail("the replay UI needs a terminal (stdout is not one): use 'lrtop replay --summary' for a table instead")
        }
        let (chosenTheme, themeNotice) = try Themes.resolve(theme)
        var warnings = themeNotice.map { [$0] } ?? []
        let options = ReplayOptions(alignment: align == .walltime ? .walltime : .step, speed: speed,
                                    startAt: at ?? (play ? Int.min : nil), play: play)
        // The source keeps the runs; no other copy stays alive (an import's raw series are freed).
        let source = ReplaySource(runs: RunInputs.nameBranches(RunNames.assign(try inputs.load(warnings: &warnings))),
                                  options: options)
        if align == .walltime && source.alignment != .walltime {
            let w = "no wall times in \(source.runs.count > 1 ? "these runs" : "this run"): aligned by step"
            printErr("lrtop: warning: \(w)")
            warnings.append(w)
        }
        let dashboard = source.makeDashboard(theme: chosenTheme, themeStore: Themes.store)
        if let first = warnings.first {
            dashboard.showNotice(first + (warnings.count > 1 ? " (+\(warnings.count - 1) more, printed before the UI)" : ""),
                                 .warning)
        }
        let reason = try TUIApp.run(dashboard, options: terminal.applied())
        if case .interrupted(let signal) = reason { throw ExitCode(128 + signal) }
    }
}
