import ArgumentParser
import Foundation
import LRTUI

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow a run log that another process is writing, live in the terminal UI (like tail -f).",
        discussion: """
        lrtop train --headless --log run.jsonl &   then   lrtop watch run.jsonl
        It waits for the file when it does not exist yet, and shows how the run ended when the end record arrives. \
        Watching is read-only: the keys change the view (zoom, scales, smoothing, theme), not the run.
        """)

    @Argument(help: "The lrtop .jsonl run log to follow.") var log: String
    @Option(help: "Theme name from 'lrtop themes', or a .theme file.") var theme: String?
    @Option(name: .customLong("interval-ms"), help: "How often to read new lines, in milliseconds.") var intervalMs = 150
    @OptionGroup var terminal: TerminalFlags

    func validate() throws {
        guard (10...10_000).contains(intervalMs) else {
            throw ValidationError("--interval-ms \(intervalMs): choose 10 to 10000")
        }
    }

    func run() throws {
        guard isatty(STDOUT_FILENO) == 1, isatty(STDIN_FILENO) == 1 else {
            try fail("lrtop watch needs a terminal (stdout is not one): use 'lrtop replay --summary \(log)' for a table")
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: log, isDirectory: &isDir), isDir.boolValue {
            try fail("\(log) is a folder: watch follows one .jsonl run log (its run.jsonl?)")
        }
        let (chosen, themeNotice) = try Themes.resolve(theme)
        let source = WatchSource(url: URL(fileURLWithPath: log), pollInterval: Double(intervalMs) / 1000)
        let dashboard = Dashboard(source: source, theme: chosen, themeStore: Themes.store)
        if let themeNotice { dashboard.showNotice(themeNotice, .warning) }
        let reason = try TUIApp.run(dashboard, options: terminal.applied())
        if case .interrupted(let signal) = reason { throw ExitCode(128 + signal) }
    }
}
