import Foundation
import Testing

/// `lrtop runs` in tmux, from a folder that holds no runs, over real runs started elsewhere: two bridged PyTorch
/// loops, a 2-rank DDP job and a headless `lrtop train`; and a loop stuck in its data loading. Each world has its
/// own socket and registry folders (XDG_RUNTIME_DIR, XDG_STATE_HOME), so other runs on the machine stay out of it.
@Suite(.serialized, .enabled(if: tmuxInstalled, "needs tmux"),
       .enabled(if: venvPython != nil, "no Python venv at ${LRTOP_VENV:-~/.cache/lrtop/venv}: run .ci/install to create it"))
struct RunsTableEndToEndTests {
    /// Importing torch alone can take 10 s on a busy machine.
    let slow: TimeInterval = 180

    /// The folders of one test: where the runs live, the private socket and state folders, and an empty folder the
    /// table is started from.
    final class World {
        let dir: TempDir
        let runsDir: URL
        let elsewhere: URL
        var environment: [String: String]
        var processes: [Process] = []

        init() throws {
            // A short path: socket paths must stay under ~108 bytes.
            dir = try TempDir("lrr")
            runsDir = dir.url.appendingPathComponent("work")
            elsewhere = dir.url.appendingPathComponent("empty")
            for (d, mode) in [(runsDir, 0o755), (elsewhere, 0o755), (dir.url.appendingPathComponent("rt"), 0o700),
                              (dir.url.appendingPathComponent("state"), 0o700)] {
                try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: mode])
            }
            environment = ["XDG_RUNTIME_DIR": dir.path("rt"), "XDG_STATE_HOME": dir.path("state"),
                           "PYTHONPATH": packageRoot.appendingPathComponent("python").path, "OMP_NUM_THREADS": "1"]
        }

        /// Starts a program in the runs folder with this world's folders; its output goes to NAME.out.
        @discardableResult
        func start(_ executable: String, _ arguments: [String], output name: String) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = arguments
            p.currentDirectoryURL = runsDir
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let outPath = runsDir.appendingPathComponent("\(name).out").path
            FileManager.default.createFile(atPath: outPath, contents: nil)
            let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
            p.standardOutput = out
            p.standardError = out
            p.standardInput = FileHandle.nullDevice
            try p.run()
            processes.append(p)
            return p
        }

        /// A python/examples script, running until stopped, slowed to watch.
        func example(_ script: String, name: String, extra: [String] = []) throws {
            try start(venvPython!, [packageRoot.appendingPathComponent("python/examples/\(script)").path,
                                    "--steps", "100000", "--step-delay", "0.05", "--name", name, "--log-dir", "runs"] + extra,
                      output: name)
        }

        func log(_ name: String) -> String { runsDir.appendingPathComponent("runs/\(name)/run.jsonl").path }

        func output(_ name: String) -> String {
            (try? String(contentsOfFile: runsDir.appendingPathComponent("\(name).out").path, encoding: .utf8)) ?? ""
        }

        /// The table, in tmux, started from the empty folder.
        func table(width: Int = 130, height: Int = 40) throws -> TmuxSession {
            let env = environment.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
            return try TmuxSession(command: "env \(env) \(lrtopBinary.path) runs", width: width, height: height,
                                   directory: elsewhere)
        }

        func close() {
            for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            dir.cleanup()
        }
    }

    /// Waits until the log of `name` has `steps` step records.
    func waitForSteps(_ world: World, _ name: String, _ steps: Int, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let log = try? readLog(world.log(name)), records(log, type: "step").count >= steps { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return false
    }

    /// The step records just before and after the `text` command event in a log (once both are written).
    func aroundCommand(_ path: String, _ text: String) -> (before: [String: Any], after: [String: Any])? {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let log = try? readLog(path),
               let i = log.lastIndex(where: { $0["type"] as? String == "event" && $0["text"] as? String == text }),
               let after = log[(i + 1)...].first(where: { $0["type"] as? String == "step" }),
               let before = log[..<i].last(where: { $0["type"] as? String == "step" }) {
                return (before, after)
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return nil
    }

    /// The row of the screen that shows `name`.
    func row(_ screen: String, _ name: String) -> Int? {
        screen.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(name) }
    }

    @Test func listsRunsStartedElsewhereTagTwoAndHalveTheirLRSortFilterOpenAndComeBack() throws {
        let world = try World()
        defer { world.close() }
        try world.example("plain_loop.py", name: "alpha")
        try world.example("plain_loop.py", name: "beta")
        try world.example("ddp_run.py", name: "gamma-ddp")
        try world.start(lrtopBinary.path, ["train", "--headless", "--data", "synthetic:spirals", "--epochs", "0",
                                           "--max-steps", "100000", "--pace", "20/s", "--name", "delta"], output: "delta")
        for name in ["alpha", "beta", "gamma-ddp"] {
            #expect(waitForSteps(world, name, 5, timeout: slow), "\(name) did not start:\n\(world.output(name))")
        }
        let tui = try world.table()
        defer { tui.close() }
        var screen = try tui.waitFor("lrtop runs", timeout: 30)
        for name in ["alpha", "beta", "gamma-ddp", "delta"] { screen = try tui.waitFor(name, timeout: 60) }
        // Kinds as the runs say: a bridged plain loop, a DDP job of 2 ranks as one row, lrtop's own trainer.
        #expect(screen.contains("plain×2"), "the DDP job is one row of 2 ranks:\n\(screen)")
        #expect(screen.contains("lrtop"), "\(screen)")

        // Sort by name: alpha, beta, delta, gamma-ddp from the top; inverted, the other way.
        try tui.send(">")
        screen = try tui.waitFor("sort: name ▲")
        let order = ["alpha", "beta", "delta", "gamma-ddp"].map { row(screen, $0) ?? -1 }
        #expect(order == order.sorted() && !order.contains(-1), "rows by name: \(order)\n\(screen)")
        try tui.send("I")
        screen = try tui.waitFor("sort: name ▼")
        #expect((row(screen, "gamma-ddp") ?? 99) < (row(screen, "alpha") ?? -1), "\(screen)")
        try tui.send("I")
        _ = try tui.waitFor("sort: name ▲")

        // Filter as typed: only alpha is left; esc clears.
        try tui.send("/")
        try tui.type("alpha")
        try tui.send("Enter")
        screen = try tui.waitFor("filter: alpha")
        #expect(try tui.waitUntil(timeout: 10) { !$0.contains("beta") && $0.contains("alpha") }, "filter left:\n\((try? tui.screen()) ?? "")")
        try tui.send("Escape")
        #expect(try tui.waitUntil(timeout: 10) { $0.contains("beta") && !$0.contains("filter:") }, "\((try? tui.screen()) ?? "")")

        // The DDP job expands into its ranks.
        try tui.send("/")
        try tui.type("gamma")
        try tui.send("Enter")
        _ = try tui.waitFor("filter: gamma")
        try tui.send("Right")
        screen = try tui.waitFor("└ rank 1", timeout: 30)
        #expect(screen.contains("└ rank 0"), "\(screen)")
        // Its stacks come from every rank, each answered by the rank's own service thread.
        try tui.send("S")
        screen = try tui.waitFor("stacks of gamma-ddp", timeout: 30)
        #expect(try tui.waitUntil(timeout: 30) { $0.contains("rank 0") && $0.contains("thread MainThread (main)") && !$0.contains("asking") },
                "\((try? tui.screen()) ?? "")")
        // Page down to rank 1's stack (a rank's heading is a line of its own: "rank 1").
        var sawRank1 = false
        for _ in 0..<12 where !sawRank1 {
            sawRank1 = try tui.waitUntil(timeout: 1) { $0.split(separator: "\n").contains { $0.contains("│ rank 1 ") } }
            if !sawRank1 { try tui.send("PageDown") }
        }
        #expect(sawRank1, "no rank 1 in the stacks view:\n\((try? tui.screen()) ?? "")")
        try tui.send("Escape")
        _ = try tui.waitFor("└ rank 1", timeout: 10)
        try tui.send("Left")
        try tui.send("Escape")
        #expect(try tui.waitUntil(timeout: 10) { $0.contains("beta") && !$0.contains("└ rank") }, "\((try? tui.screen()) ?? "")")

        // Tag alpha and beta (each found with the filter: the machine may hold other people's runs too), send
        // `lr *0.5`: both answer ✓, both optimizers hold half the LR from their next step; the DDP job and the lrtop
        // run are untouched.
        for name in ["alpha", "beta"] {
            try tui.send("/")
            try tui.type(name)
            try tui.send("Enter")
            _ = try tui.waitFor("filter: \(name)")
            try tui.send("Space")
            try tui.send("Escape")
            #expect(try tui.waitUntil(timeout: 10) { !$0.contains("filter:") }, "\((try? tui.screen()) ?? "")")
        }
        _ = try tui.waitFor("2 tagged")
        try tui.send(":")
        try tui.type("lr *0.5")
        try tui.send("Enter")
        screen = try tui.waitFor("lr *0.5 → 2 runs: 2 ✓ 0 ✗", timeout: 60)
        for name in ["alpha", "beta"] {
            guard let around = aroundCommand(world.log(name), "lr *0.5") else {
                Issue.record("no 'lr *0.5' event followed by a step in \(name)'s log"); continue
            }
            let before = around.before["lrs"] as? [Double] ?? [], after = around.after["lrs"] as? [Double] ?? []
            #expect(!before.isEmpty && before.count == after.count, "\(name): \(before) → \(after)")
            for (b, a) in zip(before, after) { #expect(abs(a / b - 0.5) < 0.01, "\(name): LR \(b) → \(a)") }
        }
        for log in [world.log("gamma-ddp")] {
            let texts = records(try readLog(log), type: "event").compactMap { $0["text"] as? String }
            #expect(!texts.contains("lr *0.5"), "an untagged run got the command: \(texts)")
        }
        let deltaLogs = try FileManager.default.subpathsOfDirectory(atPath: world.runsDir.path)
            .filter { $0.hasSuffix("run.jsonl") && !$0.contains("alpha") && !$0.contains("beta") && !$0.contains("gamma") }
        for path in deltaLogs {
            let text = try String(contentsOfFile: world.runsDir.appendingPathComponent(path).path, encoding: .utf8)
            #expect(!text.contains("lr *0.5"), "the lrtop run got the command (\(path))")
        }

        // Enter opens the selected run's dashboard in this process; esc comes back with the tags kept.
        try tui.send("Enter")
        _ = try tui.waitFor("learning rate", timeout: 60)
        #expect(!((try? tui.screen()) ?? "").contains("lrtop runs ·"))
        try tui.send("Escape")
        screen = try tui.waitFor("lrtop runs ·", timeout: 30)
        #expect(screen.contains("2 tagged"), "\(screen)")

        // q leaves the table and every run going.
        try tui.send("q")
        _ = try tui.waitFor("LRTOP_EXITED=0", timeout: 30)
        let stillRunning = world.processes.allSatisfy { $0.isRunning }
        #expect(stillRunning, "a run stopped when the table quit")

        // `lrtop attach` with no argument, where no single run is obvious, opens the same table.
        let env = world.environment.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        let attach = try TmuxSession(command: "env \(env) \(lrtopBinary.path) attach", width: 130, height: 40,
                                     directory: world.elsewhere)
        defer { attach.close() }
        screen = try attach.waitFor("lrtop runs ·", timeout: 60)
        _ = try attach.waitFor("gamma-ddp", timeout: 30)
        try attach.send("q")
        _ = try attach.waitFor("LRTOP_EXITED=0", timeout: 30)
    }

    @Test func aLoopStuckInItsDataLoadingIsFlaggedStalledAndShowsTheSleepingFrame() throws {
        let world = try World()
        defer { world.close() }
        let script = """
        import time, torch, lrtop

        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)

        def load_batch(step):
            if step >= 40:
                time.sleep(600)  # the data loader hangs
            return torch.randn(8, 4), torch.randn(8, 1)

        with lrtop.attach(opt, model=model, name="stuck", log_dir="runs", announce=False) as run:
            for step in range(100000):
                x, y = load_batch(step)
                loss = torch.nn.functional.mse_loss(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                run.step(loss=loss)
                time.sleep(0.02)
        """
        try script.write(to: world.runsDir.appendingPathComponent("stuck.py"), atomically: true, encoding: .utf8)
        try world.start(venvPython!, ["stuck.py"], output: "stuck")
        #expect(waitForSteps(world, "stuck", 40, timeout: slow), "the loop did not start:\n\(world.output("stuck"))")
        let tui = try world.table()
        defer { tui.close() }
        var screen = try tui.waitFor("stuck", timeout: 60)
        screen = try tui.waitFor("stalled", timeout: 60)
        #expect(screen.contains("⚠"), "\(screen)")
        #expect(screen.contains("1 stalled"), "\(screen)")

        try tui.send("S")
        screen = try tui.waitFor("in load_batch", timeout: 30)
        #expect(screen.contains("thread MainThread (main)"), "\(screen)")
        #expect(screen.contains("time.sleep(600)"), "\(screen)")
        try tui.send("Escape")
        _ = try tui.waitFor("lrtop runs ·")
    }
}

/// `lrtop runs` where it cannot draw: one line that says what to do instead, non-zero exit; its help names its keys.
@Suite struct RunsTableCLITests {
    @Test func withoutATerminalItSaysSoAndPointsToLs() throws {
        let out = try lrtop(["runs"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("lrtop runs needs a terminal") && out.stderr.contains("lrtop ls --json"), "\(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        let help = try lrtop(["runs", "--help"])
        #expect(help.status == 0 && help.stdout.contains("htop") && help.stdout.contains("space tags"))
    }
}
