import ArgumentParser
import Foundation
import LRBridge
import LRTUI

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Every live run of yours in one table (htop for training runs): tag runs and steer them together.",
        discussion: """
        Lists the runs this machine's registry and socket folders know, from any folder: lrtop runs (the \
        Swift trainer's, bridged PyTorch, Lightning and Hugging Face runs; a DDP job is one row, → shows its \
        ranks). space tags, c tags all, U untags; : sends a steering command (lr *0.5, ckpt, stop ...) to every \
        tagged run (or the selected one) and each row shows the run's answer; p pauses / resumes, + - [ ] scale \
        the LR, C checkpoints. enter opens a run's dashboard (esc comes back), o overlays the tagged runs' loss \
        and LR, S shows the selected run's stacks (every thread, every rank). F6 or < > sort, / or F4 filter, \
        ? lists every key, q quits and leaves the runs going. For scripts: lrtop ls --json.
        """)

    @Option(help: "Theme name from 'lrtop themes', or a .theme file.") var theme: String?
    @OptionGroup var terminal: TerminalFlags

    func run() throws {
        guard isatty(STDOUT_FILENO) == 1 && isatty(STDIN_FILENO) == 1 else {
            try fail("lrtop runs needs a terminal (stdout is not one): use 'lrtop ls' or 'lrtop ls --json' for a list")
        }
        let (chosen, themeNotice) = try Themes.resolve(theme)
        try Self.openTable(theme: chosen, notice: themeNotice, terminal: terminal)
    }

    /// The table until `q` (also `lrtop attach` with no argument when several runs are live).
    static func openTable(theme: Theme, notice: String?, terminal: TerminalFlags) throws {
        let fleet = Fleet()
        fleet.start()
        defer { fleet.close() }
        let screen = RunsScreen(source: FleetRunsSource(fleet: fleet, theme: theme), theme: theme)
        if let n = notice ?? fleet.notes().first { screen.notify(n) }
        // Ten frames a second at most: the fleet's statuses come twice a second, keys are answered at once.
        var options = TUIOptions(maxFPS: 10, pollMs: 50)
        options.idleFPS = 4
        let reason = try TUIApp.run(screen, options: terminal.applied(to: options))
        if case .interrupted(let signal) = reason { throw ExitCode(128 + signal) }
    }
}
