import Foundation
import Testing

/// The venv `.ci/install` sets up, with torch and the lrtop Python package.
let venvPython: String? = {
    let env = ProcessInfo.processInfo.environment
    let venv = env["LRTOP_VENV"] ?? ((env["HOME"] ?? NSHomeDirectory()) + "/.cache/lrtop/venv")
    let python = venv + "/bin/python"
    return FileManager.default.isExecutableFile(atPath: python) ? python : nil
}()

extension TmuxSession {
    /// Types one line at the `:` prompt.
    func command(_ text: String) throws {
        try send(":")
        try type(text)
        try send("Enter")
    }
}

/// A real PyTorch run (python/examples/plain_loop.py, in the venv) steered from `lrtop attach` in tmux: keys and
/// the `:` prompt in, the screen and the torch run's own log out.
@Suite(.serialized, .enabled(if: tmuxInstalled, "needs tmux"),
       .enabled(if: venvPython != nil, "no Python venv at ${LRTOP_VENV:-~/.cache/lrtop/venv}: run .ci/install to create it"))
struct AttachEndToEndTests {
    /// Python starts slowly on a busy machine (importing torch alone can take 10 s).
    let slow: TimeInterval = 180

    /// The training script, running until stopped; its stdout and stderr go to `output`.
    final class TorchRun {
        let process = Process()
        let dir: TempDir
        let name: String
        var log: String { dir.path("runs/\(name)/run.jsonl") }
        var output: String { (try? String(contentsOfFile: dir.path("\(name).out"), encoding: .utf8)) ?? "" }

        init(_ dir: TempDir, name: String = "torch-e2e", stepDelay: Double = 0.05) throws {
            self.dir = dir
            self.name = name
            process.executableURL = URL(fileURLWithPath: venvPython!)
            process.arguments = [packageRoot.appendingPathComponent("python/examples/plain_loop.py").path,
                                 "--steps", "100000", "--step-delay", "\(stepDelay)", "--eval-every", "50",
                                 "--name", name, "--log-dir", "runs"]
            process.currentDirectoryURL = dir.url
            var env = ProcessInfo.processInfo.environment
            // This checkout's package, whichever checkout the venv's editable install points at.
            env["PYTHONPATH"] = packageRoot.appendingPathComponent("python").path
            env["OMP_NUM_THREADS"] = "1"
            process.environment = env
            FileManager.default.createFile(atPath: dir.path("\(name).out"), contents: nil)
            let out = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.path("\(name).out")))
            process.standardOutput = out
            process.standardError = out
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        /// Waits until the log has its header and `steps` step records.
        func waitForSteps(_ steps: Int, timeout: TimeInterval) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let log = try? readLog(log), records(log, type: "step").count >= steps { return true }
                if !process.isRunning { return false }
                Thread.sleep(forTimeInterval: 0.2)
            }
            return false
        }

        func lastStep() -> Int {
            ((try? readLog(log)).flatMap { records($0, type: "step").last?["step"] as? Int }) ?? 0
        }

        func waitForExit(timeout: TimeInterval) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            return !process.isRunning
        }

        /// SIGKILL: the process gets no chance to close its socket or write an end record.
        func killHard() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    func attach(_ dir: TempDir, _ args: String = "") throws -> TmuxSession {
        try TmuxSession(command: "\(lrtopBinary.path) attach \(args)", width: 130, height: 40, directory: dir.url)
    }

    func events(_ run: TorchRun) throws -> [[String: Any]] { records(try readLog(run.log), type: "event") }

    /// The last event for `text` and the first step record after it (commands apply between two steps), once
    /// the run has flushed both to its log (it does at least every second).
    func eventAndNextStep(_ run: TorchRun, _ text: String, sourceLocation: SourceLocation = #_sourceLocation)
        -> (event: [String: Any], step: [String: Any])? {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let log = try? readLog(run.log),
               let i = log.lastIndex(where: { $0["type"] as? String == "event" && $0["text"] as? String == text }),
               let step = log[(i + 1)...].first(where: { $0["type"] as? String == "step" }) {
                return (log[i], step)
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        Issue.record("no '\(text)' event followed by a step in \(run.log)", sourceLocation: sourceLocation)
        return nil
    }

    @Test func steerAPyTorchRunFromTheKeyboardThenDetachAndAttachAgain() throws {
        let dir = try TempDir("lrtop-attach")
        defer { dir.cleanup() }
        let run = try TorchRun(dir)
        defer { run.killHard() }
        #expect(run.waitForSteps(5, timeout: slow), "the PyTorch run did not start:\n\(run.output)")

        // No argument: the only live run under ./runs.
        let tui = try attach(dir)
        defer { tui.close() }
        try tui.waitFor("learning rate", timeout: 60)
        try tui.waitFor("torch-e2e")

        // An LR override reaches the torch optimizer at the next step.
        try tui.command("lr 1e-4")
        try tui.waitFor("✓ lr 1e-4", timeout: 60)
        let lrChange = eventAndNextStep(run, "lr 1e-4")
        #expect(lrChange?.event["kind"] as? String == "command")
        #expect(lrChange?.step["step"] as? Int == (lrChange?.event["step"] as? Int).map { $0 + 1 })
        let lr = (lrChange?.step["lrs"] as? [Double])?.first ?? .nan
        #expect(abs(lr - 1e-4) < 1e-12, "LR at the step after 'lr 1e-4': \(lr)")

        // A typo never leaves this process; a command the run cannot apply comes back rejected.
        try tui.command("lr abc")
        try tui.waitFor("invalid LR 'abc'")
        try tui.send("Escape")
        try tui.command("lr head 1e-3")
        try tui.waitFor("✗ lr head 1e-3: no param group 'head'", timeout: 60)

        // Pause holds the loop at a step boundary; resume lets it go on.
        try tui.send("Space")
        try tui.waitFor("paused", timeout: 60)
        Thread.sleep(forTimeInterval: 0.5)
        let pausedAt = run.lastStep()
        Thread.sleep(forTimeInterval: 2)
        #expect(run.lastStep() == pausedAt, "steps were taken while paused")
        try tui.send("Space")
        try tui.waitFor("✓ resume", timeout: 60)
        #expect(run.waitForSteps(pausedAt + 5, timeout: 60))

        // A scheduler switch, built as a torch scheduler.
        try tui.command("sched cosine:T_max=200")
        try tui.waitFor("✓ sched cosine:T_max=200", timeout: 60)
        try tui.waitFor("cosine")
        #expect(eventAndNextStep(run, "sched cosine:T_max=200")?.event["kind"] as? String == "command")

        // Checkpoint, then roll back to it: the steps start again from the checkpoint's step.
        try tui.send("c")
        try tui.waitFor("✓ ckpt", timeout: 60)
        let ckptStep = eventAndNextStep(run, "ckpt")?.event["step"] as? Int ?? -1
        #expect(run.waitForSteps(ckptStep + 10, timeout: 60))
        try tui.send("u")
        try tui.waitFor("✓ rollback", timeout: 60)
        try tui.waitFor("rolled back")
        let afterRollback = eventAndNextStep(run, "rollback")?.step["step"] as? Int
        #expect(afterRollback == ckptStep + 1, "first step after the rollback: \(String(describing: afterRollback)), checkpoint at \(ckptStep)")

        // q detaches: the run goes on, and the key bar says so.
        _ = try tui.waitFor("q detach", timeout: 20)   // once the rollback notice has made way for the key bar
        try tui.send("q")
        var screen = try tui.waitFor("LRTOP_EXITED=0")
        #expect(screen.contains("detached at step"))
        #expect(screen.contains("Attach again with: lrtop attach"))
        let detachedAt = run.lastStep()
        #expect(run.waitForSteps(detachedAt + 5, timeout: 60), "the run stopped when lrtop detached")
        #expect(run.process.isRunning)

        // Attaching again (by folder) shows the whole run so far, then stops it.
        let again = try attach(dir, "runs/torch-e2e")
        defer { again.close() }
        try again.waitFor("learning rate", timeout: 60)
        try again.waitFor("lr 1e-4")             // the first session's command, from the log's events
        try again.command("stop")
        try again.waitFor("stopped", timeout: 60)
        #expect(run.waitForExit(timeout: 60), "the PyTorch run did not stop:\n\(run.output)")
        try again.send("q")
        screen = try again.waitFor("LRTOP_EXITED=0")
        #expect(screen.contains("the run ended (stopped) at step"))

        let log = try readLog(run.log)
        #expect(log.last?["type"] as? String == "end")
        #expect(log.last?["reason"] as? String == "stopped")
        let texts = try events(run).filter { $0["kind"] as? String == "command" }.compactMap { $0["text"] as? String }
        for expected in ["lr 1e-4", "pause", "resume", "sched cosine:T_max=200", "ckpt", "rollback", "stop"] {
            #expect(texts.contains(expected), "no '\(expected)' command event in \(texts)")
        }
        #expect(try events(run).contains { $0["kind"] as? String == "error" && $0["text"] as? String == "lr head 1e-3" })

        // The torch run's log replays like any lrtop run.
        let summary = try lrtop(["replay", "--summary", run.log])
        #expect(summary.status == 0, "\(summary.stderr)")
        #expect(summary.stdout.contains("stopped"))
    }

    @Test func aRunThatVanishesIsReportedAndAttachExitsNonZero() throws {
        let dir = try TempDir("lrtop-attach")
        defer { dir.cleanup() }
        let run = try TorchRun(dir, name: "doomed")
        defer { run.killHard() }
        #expect(run.waitForSteps(3, timeout: slow), "the PyTorch run did not start:\n\(run.output)")
        let tui = try attach(dir, "runs/doomed/run.jsonl")
        defer { tui.close() }
        try tui.waitFor("learning rate", timeout: 60)
        run.killHard()
        try tui.waitFor("lost the run: its socket closed", timeout: 30)
        // Nothing can be sent to a run that is gone, and the key bar says so.
        try tui.command("pause")
        try tui.waitFor("not connected to the run")
        try tui.send("Escape")
        try tui.send("q")
        let screen = try tui.waitFor("LRTOP_EXITED=1")
        #expect(screen.contains("lrtop: error: the run's socket closed at step"))
        #expect(!screen.contains("learning rate"))      // the terminal is restored

        // Its socket file is left behind by the kill: attaching now is refused in one line.
        let refused = try attach(dir, "runs/doomed")
        defer { refused.close() }
        let text = try refused.waitFor("LRTOP_EXITED=1", timeout: 30)
        #expect(text.contains("lrtop: error: "))
        #expect(text.contains("connection refused") || text.contains("no such socket"))
    }
}
