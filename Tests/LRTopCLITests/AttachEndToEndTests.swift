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

/// Real PyTorch runs (python/examples: a plain loop, Lightning, HF Trainer, 2-rank gloo DDP; in the venv) steered
/// from `lrtop attach` in tmux: keys and the `:` prompt in, the screen and the torch run's own log out (and, for DDP,
/// what each rank did at every step).
@Suite(.serialized, .enabled(if: tmuxInstalled, "needs tmux"),
       .enabled(if: venvPython != nil, "no Python venv at ${LRTOP_VENV:-~/.cache/lrtop/venv}: run .ci/install to create it"))
struct AttachEndToEndTests {
    /// Python starts slowly on a busy machine (importing torch alone can take 10 s).
    let slow: TimeInterval = 180

    /// A training script from python/examples, running until stopped; its stdout and stderr go to `output`.
    final class TorchRun {
        let process = Process()
        let dir: TempDir
        let name: String
        var log: String { dir.path("runs/\(name)/run.jsonl") }
        var output: String { (try? String(contentsOfFile: dir.path("\(name).out"), encoding: .utf8)) ?? "" }

        init(_ dir: TempDir, script: String = "plain_loop.py", name: String = "torch-e2e", stepDelay: Double = 0.05,
             extraArguments: [String] = ["--eval-every", "50"], environment: [String: String] = [:]) throws {
            self.dir = dir
            self.name = name
            process.executableURL = URL(fileURLWithPath: venvPython!)
            process.arguments = [packageRoot.appendingPathComponent("python/examples/\(script)").path,
                                 "--steps", "100000", "--step-delay", "\(stepDelay)",
                                 "--name", name, "--log-dir", "runs"] + extraArguments
            process.currentDirectoryURL = dir.url
            var env = ProcessInfo.processInfo.environment
            // This checkout's package, whichever checkout the venv's editable install points at.
            env["PYTHONPATH"] = packageRoot.appendingPathComponent("python").path
            env["OMP_NUM_THREADS"] = "1"
            env.merge(environment) { $1 }
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

    /// Steers a live run through what every integration must honour, each checked in the run's own log: `lr 1e-4`
    /// trains from the next step on every group, pause holds the loop until resume, `sched cosine:T_max=200` is built
    /// as a torch scheduler, `ckpt` then `rollback` returns the step count to the checkpoint's.
    func steerThroughEveryCommand(_ tui: TmuxSession, _ run: TorchRun,
                                  sourceLocation: SourceLocation = #_sourceLocation) throws {
        // An LR override reaches the torch optimizer at the next step.
        try tui.command("lr 1e-4")
        try tui.waitFor("✓ lr 1e-4", timeout: 60, sourceLocation: sourceLocation)
        let lrChange = eventAndNextStep(run, "lr 1e-4", sourceLocation: sourceLocation)
        #expect(lrChange?.event["kind"] as? String == "command", sourceLocation: sourceLocation)
        #expect(lrChange?.step["step"] as? Int == (lrChange?.event["step"] as? Int).map { $0 + 1 },
                sourceLocation: sourceLocation)
        let lrs = lrChange?.step["lrs"] as? [Double] ?? []
        #expect(!lrs.isEmpty && lrs.allSatisfy { abs($0 - 1e-4) <= 1e-13 },
                "LRs at the step after 'lr 1e-4': \(lrs)", sourceLocation: sourceLocation)

        // Pause holds the loop at a step boundary; resume lets it go on.
        try tui.send("Space")
        try tui.waitFor("paused", timeout: 60, sourceLocation: sourceLocation)
        Thread.sleep(forTimeInterval: 0.5)
        let pausedAt = run.lastStep()
        Thread.sleep(forTimeInterval: 2)
        #expect(run.lastStep() == pausedAt, "steps were taken while paused", sourceLocation: sourceLocation)
        try tui.send("Space")
        try tui.waitFor("✓ resume", timeout: 60, sourceLocation: sourceLocation)
        #expect(run.waitForSteps(pausedAt + 5, timeout: 60), sourceLocation: sourceLocation)

        // A scheduler switch, built as a torch scheduler.
        try tui.command("sched cosine:T_max=200")
        try tui.waitFor("✓ sched cosine:T_max=200", timeout: 60, sourceLocation: sourceLocation)
        try tui.waitFor("cosine", sourceLocation: sourceLocation)
        #expect(eventAndNextStep(run, "sched cosine:T_max=200", sourceLocation: sourceLocation)?.event["kind"]
                as? String == "command", sourceLocation: sourceLocation)

        // Checkpoint, then roll back to it: the steps start again from the checkpoint's step.
        try tui.send("c")
        try tui.waitFor("✓ ckpt", timeout: 60, sourceLocation: sourceLocation)
        let ckptStep = eventAndNextStep(run, "ckpt", sourceLocation: sourceLocation)?.event["step"] as? Int ?? -1
        #expect(run.waitForSteps(ckptStep + 10, timeout: 60), sourceLocation: sourceLocation)
        try tui.send("u")
        try tui.waitFor("✓ rollback", timeout: 60, sourceLocation: sourceLocation)
        try tui.waitFor("rolled back", sourceLocation: sourceLocation)
        let afterRollback = eventAndNextStep(run, "rollback", sourceLocation: sourceLocation)?.step["step"] as? Int
        #expect(afterRollback == ckptStep + 1,
                "first step after the rollback: \(String(describing: afterRollback)), checkpoint at \(ckptStep)",
                sourceLocation: sourceLocation)
    }

    /// `stop` from the prompt ends the run: the process exits, the log ends `stopped` with every command as an
    /// event, and it replays like any lrtop run.
    func stopAndCheckTheLog(_ tui: TmuxSession, _ run: TorchRun, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try tui.command("stop")
        try tui.waitFor("stopped", timeout: 60, sourceLocation: sourceLocation)
        #expect(run.waitForExit(timeout: 60), "the PyTorch run did not stop:\n\(run.output)",
                sourceLocation: sourceLocation)
        try tui.send("q")
        let screen = try tui.waitFor("LRTOP_EXITED=0", sourceLocation: sourceLocation)
        #expect(screen.contains("the run ended (stopped) at step"), sourceLocation: sourceLocation)

        let log = try readLog(run.log)
        #expect(log.last?["type"] as? String == "end", sourceLocation: sourceLocation)
        #expect(log.last?["reason"] as? String == "stopped", sourceLocation: sourceLocation)
        let texts = try events(run).filter { $0["kind"] as? String == "command" }.compactMap { $0["text"] as? String }
        for expected in ["lr 1e-4", "pause", "resume", "sched cosine:T_max=200", "ckpt", "rollback", "stop"] {
            #expect(texts.contains(expected), "no '\(expected)' command event in \(texts)", sourceLocation: sourceLocation)
        }
        let summary = try lrtop(["replay", "--summary", run.log])
        #expect(summary.status == 0, "\(summary.stderr)", sourceLocation: sourceLocation)
        #expect(summary.stdout.contains("stopped"), sourceLocation: sourceLocation)
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

        // A typo never leaves this process; a command the run cannot apply comes back rejected.
        try tui.command("lr abc")
        try tui.waitFor("invalid LR 'abc'")
        try tui.send("Escape")
        try tui.command("lr head 1e-3")
        try tui.waitFor("✗ lr head 1e-3: no param group 'head'", timeout: 60)

        try steerThroughEveryCommand(tui, run)

        // q detaches: the run goes on, and the key bar says so.
        _ = try tui.waitFor("q detach", timeout: 20)   // once the rollback notice has made way for the key bar
        try tui.send("q")
        let screen = try tui.waitFor("LRTOP_EXITED=0")
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
        try stopAndCheckTheLog(again, run)
        #expect(try events(run).contains { $0["kind"] as? String == "error" && $0["text"] as? String == "lr head 1e-3" })
    }

    /// Lightning (python/examples/lightning_run.py) and HF Trainer (hf_run.py), each through its callback.
    @Test(arguments: ["lightning", "hf"])
    func steerAFrameworkRun(_ framework: String) throws {
        let dir = try TempDir("lrtop-attach")
        defer { dir.cleanup() }
        let run = try TorchRun(dir, script: "\(framework)_run.py", name: "\(framework)-e2e")
        defer { run.killHard() }
        #expect(run.waitForSteps(5, timeout: slow), "the \(framework) run did not start:\n\(run.output)")
        #expect(try readLog(run.log).first?["framework"] as? String == framework)
        let tui = try attach(dir, "runs/\(framework)-e2e")
        defer { tui.close() }
        try tui.waitFor("learning rate", timeout: 60)
        try steerThroughEveryCommand(tui, run)
        try stopAndCheckTheLog(tui, run)
    }

    /// `f` on an attached PyTorch run: the TUI pauses the run and sends `find-lr`; the run sweeps its own next
    /// batches, logs the sweep as a sub-run that the panel draws, puts its state back and holds; enter applies the
    /// pick and resumes.
    @Test func findLRFromTheKeyboardSweepsAPyTorchRunAndAppliesThePick() throws {
        let dir = try TempDir("lrtop-attach")
        defer { dir.cleanup() }
        let run = try TorchRun(dir, name: "findlr-e2e", stepDelay: 0.02)
        defer { run.killHard() }
        #expect(run.waitForSteps(5, timeout: slow), "the PyTorch run did not start:\n\(run.output)")
        let tui = try attach(dir, "runs/findlr-e2e")
        defer { tui.close() }
        try tui.waitFor("learning rate", timeout: 60)
        try tui.send("f")
        try tui.waitFor("find-lr · subruns/find-lr-", timeout: 90)
        // Over when the panel's title says why it stopped; the cursor is then on valley, and enter applies it.
        #expect(try tui.waitUntil(timeout: 90) { $0.contains("stopped: loss") || $0.contains("all steps taken") })
        let panel = try tui.screen()
        #expect(panel.contains("V valley"))
        let pick = try #require(panel.components(separatedBy: "enter: lr ").last?.components(separatedBy: " ").first)
        #expect(Double(pick) != nil, "the pick on screen: \(pick)")
        try tui.send("Enter")
        try tui.waitFor("● running", timeout: 60)

        let sweep = try #require(eventAndNextStep(run, "find-lr"))
        let message = sweep.event["message"] as? String ?? ""
        #expect(message.hasPrefix("subruns/find-lr-") && message.contains("valley \(pick)"), "\(message)")
        let folder = String(message.prefix { $0 != ":" })
        let sub = try readLog(dir.path("runs/findlr-e2e/\(folder)/log.jsonl"))
        #expect((sub.first?["subrun"] as? [String: Any])?["kind"] as? String == "find-lr")
        #expect(records(sub, type: "step").count > 10 && sub.last?["type"] as? String == "end")
        // The pick trains from the next step; pause, find-lr, the pick and resume all sit at the same boundary.
        let applied = try #require(eventAndNextStep(run, "lr \(pick)"))
        let lr = (applied.step["lrs"] as? [Double])?.first ?? .nan
        #expect(abs(lr - Double(pick)!) <= 1e-12, "LR after the pick \(pick): \(lr)")
        let commands = try events(run).filter { $0["kind"] as? String == "command" }
        #expect(commands.compactMap { $0["text"] as? String } == ["pause", "find-lr", "lr \(pick)", "resume"])
        #expect(Set(commands.compactMap { $0["step"] as? Int }).count == 1)
    }

    /// What each DDP rank did at every step, from RUN_DIR/ranks/rankN.jsonl (python/examples/ddp_run.py).
    func rankTrace(_ run: TorchRun, _ rank: Int) throws -> [[String: Any]] {
        try readLog(run.dir.path("runs/\(run.name)/ranks/rank\(rank).jsonl"))
    }

    @Test func steerA2RankDDPRunAndEveryRankAppliesEachCommandAtTheSameStep() throws {
        let dir = try TempDir("lrtop-attach")
        defer { dir.cleanup() }
        let run = try TorchRun(dir, script: "ddp_run.py", name: "ddp-e2e", extraArguments: [])
        defer { run.killHard() }
        #expect(run.waitForSteps(5, timeout: slow), "the DDP run did not start:\n\(run.output)")
        #expect(try readLog(run.log).first?["world_size"] as? Int == 2)
        let tui = try attach(dir, "runs/ddp-e2e")
        defer { tui.close() }
        try tui.waitFor("learning rate", timeout: 60)
        try steerThroughEveryCommand(tui, run)
        try stopAndCheckTheLog(tui, run)

        // Both ranks took the same steps with the same LR and the same weights, from the first step to the stop:
        // the override, the pause, the scheduler switch, the rollback and the stop reached both at the same step.
        let ranks = try (0..<2).map { try rankTrace(run, $0) }
        #expect(ranks[0].count == ranks[1].count && ranks[0].count > 20, "steps per rank: \(ranks.map(\.count))")
        for (a, b) in zip(ranks[0], ranks[1]) {
            #expect(a["step"] as? Int == b["step"] as? Int && a["after"] as? Int == b["after"] as? Int)
            #expect(a["lr"] as? Double == b["lr"] as? Double, "rank 0 \(a), rank 1 \(b)")
            #expect(a["weights"] as? Double == b["weights"] as? Double, "rank 0 \(a), rank 1 \(b)")
        }
        let log = try readLog(run.log)
        let lrEvent = try #require(records(log, type: "event").first { $0["text"] as? String == "lr 1e-4" })
        let rollback = try #require(records(log, type: "event").first { $0["text"] as? String == "rollback" })
        for trace in ranks {
            // Rank 1 trains at 1e-4 from the step after the override, as rank 0 does.
            let next = trace.first { $0["step"] as? Int == (lrEvent["step"] as? Int ?? -2) + 1 }
            #expect(next?["lr"] as? Double == 1e-4, "rank's step after 'lr 1e-4': \(String(describing: next))")
            // The pause held every rank: a gap of seconds between two steps.
            let times = trace.compactMap { $0["time"] as? Double }
            #expect(zip(times, times.dropFirst()).contains { $1 - $0 > 2 }, "no rank-wide pause in the trace")
            // The rollback sent every rank back to the checkpoint's step.
            #expect(trace.contains { $0["after"] as? Int == rollback["step"] as? Int && ($0["step"] as? Int ?? 0) > ($0["after"] as? Int ?? 0) + 1 })
        }
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
        // Issue #20: in words (the process is gone, nobody listens), the stale socket removed when it is ours.
        #expect(text.contains("is not running: its process exited without an end record") || text.contains("no such socket"))
    }
}
