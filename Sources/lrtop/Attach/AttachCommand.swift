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
        On another host (docs/remote.md): lrtop attach gpu7: (the live run there; the runs table of gpu7 \
        when several are live), gpu7:NAME, \
        gpu7:RUN_DIR, or slurm:JOBID (rank 0's node, from squeue); your own ssh, config, keys and agent \
        (LRTOP_SSH_COMMAND replaces 'ssh' and its options, as GIT_SSH_COMMAND does for git).
        --headless prints progress lines instead (every --progress-every steps, and each command, guard trip and \
        the end); --headless --json prints every record as it arrives, one JSON object a line: \
        {"received":UNIX_SECONDS,"line":K,"via":"push"|"log","record":{...}}. Either ends when the run does.
        """)

    @Argument(help: ArgumentHelp("A run's name or pid (any folder: this machine's live runs, as lrtop ls lists them), a run folder, its run.jsonl, or the socket the run printed (default: the newest live run under --runs, else the single live run of this machine; the runs table when several are live); on another host HOST:[NAME|RUN_DIR|SOCKET] (empty: the live run there, the runs table of HOST when several are live), or slurm:JOBID.",
                                 valueName: "NAME|PID|RUN_DIR|SOCKET|HOST:[RUN]|slurm:JOBID"))
    var target: String?
    @Option(help: "Where to look for runs when no target is given.") var runs = "runs"
    @Option(help: "HOST:RUN only: how to reach the run's socket: forward it, falling back to a relay where the server refuses (auto), or forward|python|socat|nc.")
    var via: Via = .auto
    @Option(help: "Theme name from 'lrtop themes', or a .theme file.") var theme: String?
    @OptionGroup var terminal: TerminalFlags
    @Flag(help: "No UI: print progress lines (or, with --json, every record) until the run ends.") var headless = false
    @Flag(help: "With --headless: every record as it arrives, with its receive time, one JSON object a line.") var json = false
    @Option(help: "With --headless: a progress line every N steps (0: none; commands, guard trips and the end still print).")
    var progressEvery = 100

    func validate() throws {
        if json && !headless { throw ValidationError("--json goes with --headless (the UI draws the records instead)") }
        if progressEvery < 0 { throw ValidationError("--progress-every \(progressEvery): choose 0 or more") }
    }

    func run() throws {
        guard headless || (isatty(STDOUT_FILENO) == 1 && isatty(STDIN_FILENO) == 1) else {
            try fail("lrtop attach needs a terminal (stdout is not one): use --headless for progress lines, or 'lrtop replay --summary LOG' for a table")
        }
        let look = try Themes.resolve(theme)
        if let t = target, let remote = RemoteTarget.parse(t) { return try attachRemote(remote, look: look) }
        if target == nil && !headless && noSingleObviousRun() {
            return try Runs.openTable(theme: look.0, notice: look.1, terminal: terminal)
        }
        let chosen: RunFinder.Target
        do {
            chosen = try target.map { try resolve($0) } ?? pickRun()
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
        let source = Self.makeSource(connection, logURL)
        if headless { return try follow(source) }
        let again = chosen.log.map { $0.deletingLastPathComponent().path } ?? chosen.socket
        try steer(source, look: look, log: logURL.path, replay: logURL.path, again: again)
    }

    static func makeSource(_ connection: BridgeConnection, _ logURL: URL) -> AttachSource {
        // The log is read every 50 ms: a record reaches the screen within a frame or two of reaching the file.
        let source = AttachSource(connection: connection, logURL: logURL, pollInterval: 0.05)
        source.catalog = { SchedulerMenuCatalog.kinds(remainingSteps: $0, stepsPerEpoch: $1) }
        // A typo in a spec is refused here, inline, by the factory the trainer uses: it never reaches the run.
        source.checkSchedule = { spec, left, perEpoch in
            do {
                _ = try SchedulerFactory.validate(spec: spec, context: ScheduleContext(totalSteps: left, stepsPerEpoch: max(1, perEpoch)))
                return nil
            } catch { return "\(error)" }
        }
        return source
    }

    /// The dashboard over an attached run until `q`, then one line on how things stand: `look` is the resolved
    /// theme and its notice, `log` where the run's log is, `replay` what replays it, `again` what attaches again.
    func steer(_ source: AttachSource, look: (Theme, String?), log: String, replay: String, again: String) throws {
        let (theme, themeNotice) = look
        let dashboard = Dashboard(source: source, theme: theme, themeStore: Themes.store)
        dashboard.showNotice(themeNotice ?? "attached to \(source.status().title) · q detaches, the run goes on",
                             themeNotice == nil ? .info : .warning)
        // Steering wants the run's answer on screen at once: the loop looks at the socket every 10 ms and draws up
        // to 30 frames a second for two seconds after a key; watching, 10.
        var options = TUIOptions(maxFPS: 30, pollMs: 10)
        options.idleFPS = 10
        let reason = try TUIApp.run(dashboard, options: terminal.applied(to: options))
        let step = dashboard.status.step
        source.detach()

        switch source.ending {
        case .lost(let why):
            try fail(why + "; what it logged is in \(log)")
        case .ended(let why):
            printOut("lrtop: the run ended (\(why)) at step \(Format.grouped(step)); replay with: lrtop replay \(replay)")
        case .detached:
            printOut("lrtop: detached at step \(Format.grouped(step)); the run goes on. Attach again with: lrtop attach \(again)")
        }
        if case .interrupted(let signal) = reason { throw ExitCode(128 + signal) }
    }

    /// `--headless`: the records as they arrive, until the run ends (exit 0) or is lost (exit 1).
    func follow(_ source: AttachSource) throws {
        let printer = ProgressPrinter(every: progressEvery)
        while true {
            for arrival in source.drainNumbered() {
                if json {
                    var line = Array("{\"received\":".utf8) + Array(String(format: "%.6f", Date().timeIntervalSince1970).utf8)
                    line += Array(",\"line\":\(arrival.line),\"via\":\"\(arrival.pushed ? "push" : "log")\",\"record\":".utf8)
                    line += Array(RunLogLine.encode(arrival.record).utf8) + Array("}\n".utf8)
                    if !writeAll(line) { return }  // stdout closed (| head): nothing left to do
                    continue
                }
                switch arrival.record {
                case .header(let h):
                    printer.totalSteps = h.totalSteps ?? 0
                    printer.stepsPerEpoch = max(1, h.stepsPerEpoch)
                case .end(let e): printer.summary(e)
                default: printer.handle(arrival.record)
                }
                if printer.stdoutClosed { return }
            }
            switch source.ending {
            case .detached: source.connection.waitReadable(timeoutMs: 20)
            case .ended: return
            case .lost(let why): try fail(why + "; what it logged is in \(source.logURL.path)")
            }
        }
    }

    private func writeAll(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let n = write(STDOUT_FILENO, b.baseAddress! + done, b.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                done += n
            }
            return true
        }
    }

    /// A path (socket, run folder, log) as it is; anything else is a run's name or pid on this machine.
    func resolve(_ argument: String) throws(BridgeError) -> RunFinder.Target {
        var st = stat()
        if stat(argument, &st) == 0 || argument.contains("/") { return try RunFinder.target(for: argument) }
        return try AttachLookup.target(named: argument, runsFolder: runs)
    }

    /// The newest live run under --runs, or the person's pick when several are live; with none there, the single
    /// live run of this machine (or the person's pick of them).
    func pickRun() throws(BridgeError) -> RunFinder.Target {
        let found = RunFinder.runs(under: URL(fileURLWithPath: runs))
        let probed = RunFinder.probe(found)
        let live = probed.filter { $0.state == .listening }.map(\.run)
        guard let newest = live.first else {
            let (rows, looked) = AttachLookup.liveRuns()
            if rows.count == 1 { return AttachLookup.target(rows[0]) }
            if rows.isEmpty {
                if !found.isEmpty { throw RunFinder.noLiveRun(found, under: runs, probed: probed) }
                throw BridgeError("no live runs on this machine (\(looked), and under \(runs)): start one with lrtop.attach(optimizer, ...) in your PyTorch script or lrtop train, or give a run folder or socket")
            }
            return try pick(rows)
        }
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

    /// The person's pick among this machine's live runs (`lrtop runs` shows them as a table).
    func pick(_ rows: [FleetRow]) throws(BridgeError) -> RunFinder.Target {
        printOut("\(rows.count) live runs on this machine:")
        for (i, row) in rows.enumerated() { printOut("  \(i + 1)  \(AttachLookup.describe(row))") }
        while true {
            printOut("attach to which? [1] ", terminator: "")
            flushStdout()
            guard let line = readLine() else { throw BridgeError("no run chosen") }
            let answer = line.trimmingCharacters(in: .whitespaces)
            if answer.isEmpty { return AttachLookup.target(rows[0]) }
            if let n = Int(answer), rows.indices.contains(n - 1) { return AttachLookup.target(rows[n - 1]) }
            if answer == "q" { throw BridgeError("no run chosen") }
            printOut("type a number from 1 to \(rows.count), Enter for the first, or q")
        }
    }
}
