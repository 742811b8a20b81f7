import ArgumentParser
import Foundation
import LRBridge
import LRLog
import LROptim
import LRTrain
import LRTUI

struct Attach: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Steer a PyTorch run in another process, live in the terminal UI.",
        discussion: """
        The run uses the lrtop Python package (the wheel, or pip install ./python in a clone): \
        run = lrtop.attach(optimizer, scheduler), \
        then run.step(loss=loss) after each optimizer.step(); or lrtop.lightning.LrtopCallback(), or \
        lrtop.hf.LrtopCallback(). It prints 'lrtop: steer this run with: lrtop attach RUN_DIR'.
        The charts show the whole run so far from its log, then follow it live; the keys and the : prompt send \
        commands of the steering language (lr 1e-4, lr *0.5, sched cosine:T_max=200, pause, resume, ckpt, \
        rollback, stop ...), applied by the run at its next optimizer step. q detaches and leaves the run going.
        """)

    @Argument(help: ArgumentHelp("A run folder, its run.jsonl, or the socket the run printed (default: the newest live run under --runs).",
                                 valueName: "SOCKET|RUN_DIR|RUN.jsonl"))
    var target: String?
    @Option(help: "Where to look for runs when no target is given.") var runs = "runs"
    @Option(help: "Theme name from 'lrtop themes', or a .theme file.") var theme: String?
    @OptionGroup var terminal: TerminalFlags

    func run() throws {
        guard isatty(STDOUT_FILENO) == 1, isatty(STDIN_FILENO) == 1 else {
            try fail("lrtop attach needs a terminal (stdout is not one): use 'lrtop replay --summary LOG' for a table")
        }
        let (look, themeNotice) = try Themes.resolve(theme)
        let chosen: RunFinder.Target
        do {
            chosen = try target.map { try RunFinder.target(for: $0) } ?? pickRun()
        } catch {
            try fail("\(error)")
        }
        if let skipped = chosen.skipped { printErr("lrtop: \(skipped)") }
        let connection: BridgeConnection
        let logURL: URL
        do {
            connection = try BridgeConnection(path: chosen.socket)
            if let log = chosen.log {
                logURL = log
            } else {
                // Only the greeting names the log of a run given by its socket.
                let hello = try connection.waitForGreeting {
                    printErr("lrtop: waiting for the run at \(chosen.socket) to answer ...")
                }
                logURL = URL(fileURLWithPath: hello.log)
            }
        } catch {
            if let log = chosen.log, let reason = RunFinder.endReason(of: log) {
                try fail("the run has ended (\(reason)), so there is nothing to steer: replay it with 'lrtop replay \(log.path)'")
            }
            if let log = chosen.log, error.code == ECONNREFUSED {
                let removed = RunFinder.removeIfStale(chosen.socket) ? " (the stale socket was removed)" : ""
                try fail("the run in \(log.deletingLastPathComponent().path) is not running: its process exited without an end "
                         + "record (killed or crashed), so nobody listens on its socket \(chosen.socket)\(removed); replay what "
                         + "it logged with 'lrtop replay \(log.path)'")
            }
            try fail("\(error)")
        }
        let source = AttachSource(connection: connection, logURL: logURL)
        source.catalog = { SchedulerMenuCatalog.kinds(remainingSteps: $0, stepsPerEpoch: $1) }
        source.checkSchedule = { spec, left, perEpoch in
            do {
                _ = try SchedulerFactory.validate(spec: spec, context: ScheduleContext(totalSteps: left, stepsPerEpoch: max(1, perEpoch)))
                return nil
            } catch { return "\(error)" }
        }

        let dashboard = Dashboard(source: source, theme: look, themeStore: Themes.store)
        dashboard.showNotice(themeNotice ?? "attached to \(source.status().title) · q detaches, the run goes on",
                             themeNotice == nil ? .info : .warning)
        let reason = try TUIApp.run(dashboard, options: terminal.applied())
        let step = dashboard.status.step
        source.detach()

        let log = source.logURL.path
        switch source.ending {
        case .lost(let why):
            try fail(why + "; what it logged is in \(log)")
        case .ended(let why):
            printOut("lrtop: the run ended (\(why)) at step \(Format.grouped(step)); replay with: lrtop replay \(log)")
        case .detached:
            let again = chosen.log.map { $0.deletingLastPathComponent().path } ?? chosen.socket
            printOut("lrtop: detached at step \(Format.grouped(step)); the run goes on. Attach again with: lrtop attach \(again)")
        }
        if case .interrupted(let signal) = reason { throw ExitCode(128 + signal) }
    }

    /// The newest live run under --runs, or the person's pick when several are live.
    func pickRun() throws(BridgeError) -> RunFinder.Target {
        let found = RunFinder.runs(under: URL(fileURLWithPath: runs))
        let probed = RunFinder.probe(found)
        let live = probed.filter { $0.state == .listening }.map(\.run)
        guard let newest = live.first else { throw RunFinder.noLiveRun(found, under: runs, probed: probed) }
        if let skipped = RunFinder.skippedNote(probed) { printErr("lrtop: \(skipped)") }
        if live.count == 1 { return RunFinder.Target(socket: newest.socket!, log: newest.log) }
        printOut("\(live.count) live runs under \(runs), newest first:")
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        for (i, run) in live.enumerated() {
            printOut("  \(i + 1)  \(run.name)  (last written \(formatter.string(from: run.modified)))")
        }
        while true {
            printOut("attach to which? [1] ", terminator: "")
            flushStdout()
            guard let line = readLine() else { throw BridgeError("no run chosen") }
            let answer = line.trimmingCharacters(in: .whitespaces)
            if answer.isEmpty { return RunFinder.Target(socket: newest.socket!, log: newest.log) }
            if let n = Int(answer), live.indices.contains(n - 1) {
                return RunFinder.Target(socket: live[n - 1].socket!, log: live[n - 1].log)
            }
            if answer == "q" { throw BridgeError("no run chosen") }
            printOut("type a number from 1 to \(live.count), Enter for the newest, or q")
        }
    }
}
