import Foundation
import Glibc
import Testing

/// Records pushed over the bridge's socket (docs/bridge.md "Records, pushed"), as a user meets them: `lrtop attach`
/// on a live PyTorch run, headless and in the UI.
@Suite(.serialized, .enabled(if: venvPython != nil, "no Python venv at ${LRTOP_VENV:-~/.cache/lrtop/venv}: run .ci/install to create it"))
struct PushEndToEndTests {
    let slow: TimeInterval = 180

    /// The script below, running in `dir` (its log: runs/push-e2e/run.jsonl).
    final class Loop {
        let process: Process
        let log: String
        init(_ dir: TempDir) throws {
            log = dir.path("runs/push-e2e/run.jsonl")
            process = try startPythonScript(PushEndToEndTests.script, in: dir)
        }
        func waitForSteps(_ n: Int, timeout: TimeInterval) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline, process.isRunning {
                if ((try? readLog(log)).map { records($0, type: "step").count } ?? 0) >= n { return true }
                Thread.sleep(forTimeInterval: 0.2)
            }
            return false
        }
        func kill() {
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// A loop that checkpoints at step 150 and rolls back at 200 (so steps 151-200 come twice), ending at 400.
    static let script = """
    import time, torch, lrtop
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with lrtop.attach(opt, model=model, name="push-e2e", log_dir="runs", total_steps=400, announce=False) as run:
        for step in range(1, 10000):
            loss = model(torch.randn(8, 4)).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            run.step(loss=loss, acc=torch.tensor(step / 400.0))
            if run.step_count == 150 and step < 200:
                run.command("ckpt")
            if step == 200:
                run.command("rollback")
            if run.step_count >= 400:
                break
            time.sleep(0.03)
    """

    /// Attached mid-run, the viewer's model holds every line of the log once, in the log's order, across the join of
    /// the log's history and the pushed stream, and across a rollback where steps repeat.
    @Test func attachingMidRunJoinsTheHistoryAndTheStreamWithNoGapAndNoDuplicate() throws {
        let dir = try TempDir("lrtop-push")
        defer { dir.cleanup() }
        let run = try Loop(dir)
        defer { run.kill() }
        #expect(run.waitForSteps(60, timeout: slow), "the loop did not start")
        let out = try lrtop(["attach", "runs/push-e2e", "--headless", "--json"], in: dir.url, timeout: 120)
        #expect(out.status == 0, "\(out.stderr)")
        let arrived = out.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let log = try readLog(run.log)
        #expect(arrived.count == log.count, "every line of the log arrived, none twice")
        #expect(arrived.map { $0["line"] as? Int ?? -1 } == Array(0..<log.count))
        for (a, line) in zip(arrived, log) {
            let record = a["record"] as? [String: Any] ?? [:]
            #expect(record["type"] as? String == line["type"] as? String && record["step"] as? Int == line["step"] as? Int,
                    "line \(a["line"] ?? "?"): \(record) vs \(line)")
        }
        let via = arrived.map { $0["via"] as? String ?? "" }
        let firstPushed = try #require(via.firstIndex(of: "push"), "nothing was pushed")
        #expect(firstPushed > 60, "the history came from the log")
        #expect(via[firstPushed...].allSatisfy { $0 == "push" }, "after the join, everything came pushed")
        let steps = arrived.compactMap { a -> Int? in
            let r = a["record"] as? [String: Any]
            return r?["type"] as? String == "step" ? r?["step"] as? Int : nil
        }
        #expect(steps.count == 450 && steps.filter { $0 == 175 }.count == 2, "the rolled-back steps, twice, in order")
        #expect((arrived.last?["record"] as? [String: Any])?["type"] as? String == "end")
        // Each arrival has its receive time, on the machine's clock (a benchmark compares it with the run's).
        let received = arrived.compactMap { $0["received"] as? Double }
        #expect(received.count == arrived.count && received == received.sorted())
    }

    /// `--headless` without `--json`: progress lines and the end, for a person at a terminal that cannot draw the UI.
    @Test func headlessProgressLinesAndTheEnd() throws {
        let dir = try TempDir("lrtop-push")
        defer { dir.cleanup() }
        let run = try Loop(dir)
        defer { run.kill() }
        #expect(run.waitForSteps(5, timeout: slow), "the loop did not start")
        let out = try lrtop(["attach", "runs/push-e2e", "--headless", "--progress-every", "100"], in: dir.url, timeout: 120)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("step    400/400"), "\(out.stdout)")
        #expect(out.stdout.contains("rolled back from step 201 to step 151"), "\(out.stdout)")
        #expect(out.stdout.contains("lrtop: completed at step 400"), "\(out.stdout)")
        let json = try lrtop(["attach", "runs/push-e2e", "--json"], in: dir.url)
        #expect(json.status != 0 && json.stderr.contains("--json goes with --headless"))
    }
}

/// Metrics a framework logs by its own means appear live in the attached UI's metrics grid.
@Suite(.serialized, .enabled(if: tmuxInstalled, "needs tmux"),
       .enabled(if: venvPython != nil, "no Python venv at ${LRTOP_VENV:-~/.cache/lrtop/venv}: run .ci/install to create it"))
struct FrameworkMetricsEndToEndTests {
    let slow: TimeInterval = 180

    /// Lightning: the example's `self.log("train/acc", ...)`; HF: `on_log`'s `grad_norm` and `learning_rate`.
    @Test(arguments: ["lightning", "hf"])
    func aFrameworksOwnLoggedMetricAppearsLiveInTheGrid(_ framework: String) throws {
        let dir = try TempDir("lrtop-attach")
        defer { dir.cleanup() }
        let run = try AttachEndToEndTests.TorchRun(dir, script: "\(framework)_run.py", name: "\(framework)-metrics")
        defer { run.killHard() }
        #expect(run.waitForSteps(5, timeout: slow), "the \(framework) run did not start:\n\(run.output)")
        let tui = try TmuxSession(command: "\(lrtopBinary.path) attach runs/\(framework)-metrics", width: 160, height: 48,
                                  directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("learning rate", timeout: 60)
        try tui.send("m")
        let name = framework == "lightning" ? "train/acc" : "learning_rate"
        let grid = try tui.waitFor(name, timeout: 60)
        if framework == "hf" {
            // HF's own grad_norm, beside (not to be taken for) the step records' train/grad_norm.
            #expect(try tui.waitUntil(timeout: 30) { $0.replacingOccurrences(of: "train/grad_norm", with: "").contains("grad_norm") },
                    "no grad_norm chart:\n\(grid)")
        }
        let metrics = records(try readLog(run.log), type: "metrics")
        #expect(metrics.contains { ($0["metrics"] as? [String: Any])?[framework == "lightning" ? "train/acc" : "grad_norm"] != nil })
        try tui.send("q")
        try tui.waitFor("LRTOP_EXITED=0")
    }
}
