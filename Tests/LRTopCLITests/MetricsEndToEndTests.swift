import Foundation
import Testing

/// Twenty metrics of a run's own, in four groups, as a bridged loop logs them with `run.step(loss, **metrics)`.
let twentyMetrics: [String] = (0..<20).map { (k: Int) -> String in
    let group: String = ["train", "val", "grad", "system"][k % 4]
    let names: [String] = ["acc", "f1", "attn", "cpu", "ppl", "ppl", "mlp", "mem", "tok_s", "auc", "head", "disk",
                           "entropy", "recall", "embed", "net", "margin", "precision", "clip", "load"]
    return group + "/" + names[k]
}

/// The metric import fixtures (Tests/LRLogTests/Fixtures/metrics, from scripts/record_metric_fixtures.py).
let metricFixtures = packageRoot.appendingPathComponent("Tests/LRLogTests/Fixtures/metrics")

func metricFixtureManifest() throws -> [String: [String: Any]] {
    let data = try Data(contentsOf: metricFixtures.appendingPathComponent("manifest.json"))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
}

/// A run log with the twenty metrics in every step record (as the bridge writes them: keys after the built-in ones),
/// an eval metric and a `metrics` record now and then.
func writeMetricLog(_ path: String, steps: Int = 400) throws {
    var lines = [#"{"type":"header","schema":1,"lrtop_version":"py","start_time":"2025-01-01T00:00:00Z","seed":1,"groups":["all"],"steps_per_epoch":100,"total_steps":\#(steps),"config":{"name":"twenty"}}"#]
    for s in 1...steps {
        var line = #"{"type":"step","step":\#(s),"epoch":\#((s - 1) / 100),"lrs":[0.001],"loss":\#(2 / Double(s).squareRoot()),"grad_norm":1.0,"samples_per_sec":1000.0,"wall_time":\#(Double(s) * 0.01)"#
        for (k, name) in twentyMetrics.enumerated() { line += ",\"\(name)\":\(Double(k) + sin(Double(s) / 20 + Double(k)))" }
        lines.append(line + "}")
        if s % 100 == 0 {
            lines.append(#"{"type":"eval","step":\#(s),"epoch":0,"loss":0.5,"accuracy":0.8,"wall_time":\#(Double(s) * 0.01),"val/f1_eval":\#(Double(s) / 1000)}"#)
        }
        if s % 50 == 0 { lines.append(#"{"type":"metrics","step":\#(s),"wall_time":\#(Double(s) * 0.01),"tokens":\#(s * 4096)}"#) }
    }
    try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
}

@Suite(.serialized, .enabled(if: tmuxInstalled, "needs tmux"))
struct MetricsEndToEndTests {
    /// The key the grid's filter and pin are checked with: the val group.
    let valMetrics = twentyMetrics.filter { $0.hasPrefix("val/") }

    /// `m`, then every name on the screen.
    func openGrid(_ tui: TmuxSession, expecting names: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        try tui.send("m")
        var screen = ""
        let all = try tui.waitUntil(timeout: 30) { text in
            screen = text
            return text.contains("↑↓←→") && names.allSatisfy(text.contains)
        }
        #expect(all, sourceLocation: sourceLocation)
        Thread.sleep(forTimeInterval: 0.3)
        screen = try tui.screen()
        for name in names { #expect(screen.contains(name), "no '\(name)' on the grid:\n\(screen)", sourceLocation: sourceLocation) }
        return screen
    }

    /// `/` filters to the val group, the first of those is pinned, and `m` shows it in the loss panel.
    func filterAndPin(_ tui: TmuxSession, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try tui.send("/")
        try tui.type("val/")
        try tui.send("Enter")
        let filtered = try tui.waitFor("filter: val/", sourceLocation: sourceLocation)
        for name in valMetrics { #expect(filtered.contains(name), "\(name) filtered out", sourceLocation: sourceLocation) }
        for name in twentyMetrics where !name.hasPrefix("val/") {
            #expect(!filtered.contains(name), "\(name) not filtered out", sourceLocation: sourceLocation)
        }
        try tui.send("Right")  // selects the first chart: val/loss
        try tui.send("Right")  // val/acc
        try tui.send("Right")  // val/f1
        try tui.send("Enter")
        try tui.waitFor("pinned val/f1 to the loss panel", sourceLocation: sourceLocation)
        try tui.send("m")
        let main = try tui.waitFor("m: grid", sourceLocation: sourceLocation)
        #expect(main.contains("◆ val/f1") && main.contains("learning rate") && main.contains("loss"), sourceLocation: sourceLocation)
    }

    @Test func aLogWithTwentyMetricsReplaysThemByNameFiltersAndPins() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try writeMetricLog(dir.path("twenty.jsonl"))
        let tui = try TmuxSession(command: "\(lrtopBinary.path) replay twenty.jsonl", width: 200, height: 60, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("learning rate")
        let screen = try openGrid(tui, expecting: twentyMetrics + ["train/loss", "val/acc", "val/f1_eval", "tokens"])
        #expect(screen.contains("metrics 28 · train 9 · val 8 · grad 5 · system 5 · other 1"), "\(screen)")
        try filterAndPin(tui)
        try tui.send("q")
        try tui.waitFor("LRTOP_EXITED=0")
    }

    @Test func aTensorBoardFileWithADozenTagsShowsEveryTag() throws {
        let manifest = try metricFixtureManifest()
        let (file, entry) = try #require(manifest.first { $0.key.hasPrefix("tensorboard_dozen/") })
        let tags = try #require(entry["tags"] as? [String: Int]).keys.sorted()
        #expect(tags.count == 12)
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = metricFixtures.appendingPathComponent(file).deletingLastPathComponent().path
        let tui = try TmuxSession(command: "\(lrtopBinary.path) replay \(path)", width: 160, height: 48, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("learning rate")
        let screen = try openGrid(tui, expecting: tags)
        #expect(screen.contains("metrics 12"))
    }

    @Test func aLightningCSVShowsEveryColumn() throws {
        let manifest = try metricFixtureManifest()
        let (file, entry) = try #require(manifest.first { $0.key.hasPrefix("lightning_many/") })
        let columns = try #require(entry["columns"] as? [String: Int]).keys.sorted()
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try TmuxSession(command: "\(lrtopBinary.path) replay \(metricFixtures.appendingPathComponent(file).path)",
                                  width: 160, height: 48, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("learning rate")
        let screen = try openGrid(tui, expecting: columns)
        #expect(screen.contains("metrics \(columns.count)"))
        // The cursor reads every chart at one step: its value in each chart's title.
        try tui.send("Tab")
        try tui.send("Left")
        try tui.waitFor("@", timeout: 10)
    }

    @Test func aLogBeingWrittenShowsNewMetricsAsTheyArrive() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.path("live.jsonl")
        try writeMetricLog(path, steps: 50)
        let tui = try TmuxSession(command: "\(lrtopBinary.path) watch live.jsonl", width: 160, height: 48, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("watching")
        _ = try openGrid(tui, expecting: ["train/acc", "val/f1"])
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((#"{"type":"step","step":51,"epoch":0,"lrs":[0.001],"loss":0.3,"grad_norm":1.0,"samples_per_sec":1000.0,"wall_time":0.51,"arrived/late":7.5}"# + "\n").utf8))
        try handle.close()
        try tui.waitFor("arrived/late")
        try tui.waitFor("7.500")
    }

    @Test func theTrainersBatchAccuracyIsAMetricInTheUI() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try TmuxSession(command: "\(lrtopBinary.path) --data synthetic:spirals --epochs 100000 --batch-size 32 --hidden 32 --run-dir run",
                                  width: 140, height: 44, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("learning rate")
        _ = try openGrid(tui, expecting: ["train/acc", "train/loss", "train/lr", "train/grad_norm"])
        try tui.send("m")
        try tui.send("q")
        try tui.waitFor("quit? training is still running")
        try tui.send("y")
        try tui.waitFor("LRTOP_EXITED=0")
        let steps = records(try readLog(dir.path("run/run.jsonl")), type: "step")
        #expect(!steps.isEmpty && steps.allSatisfy { ($0["train/acc"] as? Double).map { (0...1).contains($0) } ?? false })
    }
}

/// A real PyTorch loop logging twenty metrics of its own through the bridge (tensors, by `run.step(loss, **metrics)`
/// and `run.log(metrics)`), attached.
@Suite(.serialized, .enabled(if: tmuxInstalled, "needs tmux"),
       .enabled(if: venvPython != nil, "no Python venv at ${LRTOP_VENV:-~/.cache/lrtop/venv}: run .ci/install to create it"))
struct BridgedMetricsEndToEndTests {
    static let script = """
    import math, time, torch, lrtop
    names = \(twentyMetrics.map { "\"\($0)\"" }.joined(separator: ", ").replacingOccurrences(of: "\"", with: "'"))
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with lrtop.attach(opt, model=model, name="metrics-e2e", log_dir="runs", total_steps=100000, steps_per_epoch=100,
                      batch_size=8) as run:
        step = 0
        while not run.should_stop and step < 100000:
            loss = model(torch.randn(8, 4)).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            values = [torch.tensor(k + math.sin(step / 20 + k)) for k in range(len(names))]
            # Half of them in the step record, the other half on their own every 5 steps (run.log): tensors, both.
            run.step(loss=loss, **dict(zip(names[:10], values[:10])))
            if step % 5 == 0:
                run.log(dict(zip(names[10:], values[10:])))
            step += 1
            time.sleep(0.02)
    """

    @Test func aBridgedLoopsTwentyMetricsAreAttachedFilteredAndPinned() throws {
        let dir = try TempDir("lrtop-attach")
        defer { dir.cleanup() }
        let process = try startPythonScript(Self.script, in: dir)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) }; process.waitUntilExit() }
        let log = dir.path("runs/metrics-e2e/run.jsonl")
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline, ((try? readLog(log)).map { records($0, type: "step").count } ?? 0) < 5 {
            Thread.sleep(forTimeInterval: 0.2)
        }
        let tui = try TmuxSession(command: "\(lrtopBinary.path) attach runs/metrics-e2e", width: 200, height: 60, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("learning rate", timeout: 60)
        let e2e = MetricsEndToEndTests()
        _ = try e2e.openGrid(tui, expecting: twentyMetrics)
        try tui.send("/")
        try tui.type("val/")
        try tui.send("Enter")
        let filtered = try tui.waitFor("filter: val/")
        #expect(!filtered.contains("train/acc") && filtered.contains("val/f1"))
        // The bridge's run has no evaluations: val/f1 is the first chart of the val group.
        try tui.send("Right")
        try tui.send("Enter")
        try tui.waitFor("pinned val/f1 to the loss panel")
        try tui.send("m")
        try tui.waitFor("m: grid")
        try tui.send("q")
        try tui.waitFor("LRTOP_EXITED=0")
    }
}

@Suite struct MetricsCLITests {
    @Test func summaryOfAMetricAndAnUnknownOne() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try writeMetricLog(dir.path("twenty.jsonl"))
        let out = try lrtop(["replay", "--summary", "--metric", "tokens", "--metric", "val/f1_eval", "twenty.jsonl"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let rows = summaryRows(out.stdout)
        #expect(rows.first == ["run", "metric", "values", "steps", "last", "min", "max", "mean"])
        #expect(rows.dropFirst().first == ["twenty", "tokens", "8", "50–400", "1.6384e+06", "204800 @50", "1.6384e+06 @400", "921600"])
        #expect(rows.dropFirst(2).first == ["twenty", "val/f1_eval", "4", "100–400", "0.4", "0.1 @100", "0.4 @400", "0.25"])

        let unknown = try lrtop(["replay", "--summary", "--metric", "val/f2", "twenty.jsonl"], in: dir.url)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.hasPrefix("lrtop: error: no metric 'val/f2' in twenty (metrics: train/loss, train/lr,"), "\(unknown.stderr)")
        let withoutSummary = try lrtop(["replay", "--metric", "tokens", "twenty.jsonl"], in: dir.url)
        #expect(withoutSummary.status != 0 && withoutSummary.stderr.contains("--metric goes with --summary"))
    }

    @Test func exportWritesEveryMetricAndItReadsBackTheSame() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try writeMetricLog(dir.path("twenty.jsonl"))
        let tb = try lrtop(["export", "twenty.jsonl", "--to", "tensorboard", "tb"], in: dir.url)
        #expect(tb.status == 0 && tb.stdout.contains("lrtop: with its 22 metrics, each a tag under its own name"), "\(tb.stdout) \(tb.stderr)")
        let csv = try lrtop(["export", "twenty.jsonl", "--to", "csv", "twenty.csv"], in: dir.url)
        #expect(csv.status == 0 && csv.stdout.contains("lrtop: with its 22 metrics, each a column under its own name"), "\(csv.stdout) \(csv.stderr)")
        // Every metric, read back from each export, sums up as the original does (float32 values throughout).
        let names = twentyMetrics + ["val/f1_eval", "tokens"]
        let args = ["replay", "--summary"] + names.flatMap { ["--metric", $0] }
        let original = try lrtop(args + ["twenty.jsonl"], in: dir.url)
        #expect(original.status == 0, "\(original.stderr)")
        for export in ["tb", "twenty.csv"] {
            let back = try lrtop(args + [export], in: dir.url)
            #expect(back.status == 0, "\(back.stderr)")
            let a = summaryRows(original.stdout).dropFirst(), b = summaryRows(back.stdout).dropFirst()
            #expect(a.count == names.count && b.count == names.count)
            for (x, y) in zip(a, b) { #expect(Array(x.dropFirst()) == Array(y.dropFirst()), "\(export): \(x) vs \(y)") }
        }
    }
}
