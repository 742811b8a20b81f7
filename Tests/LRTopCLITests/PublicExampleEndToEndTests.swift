import Foundation
import Testing

/// Issue #21: a publicly written PyTorch example, not written here, steered from `lrtop attach`. The example is
/// Lightning's demo `pytorch_lightning.demos.transformer.LightningTransformer` (installed from PyPI with
/// pytorch-lightning, Apache License 2.0, Copyright The Lightning AI team; Lightning adapted it from pytorch/examples'
/// `word_language_model`, BSD 3-Clause), trained as Lightning's README shows with the one line docs/bridge.md
/// documents; python/examples/lightning_transformer.py imports it and lists what is ours.
extension AttachEndToEndTests {
    /// The demo reads WikiText-2 from `data/wikitext-2.txt` (its download needs the network): a small text of the
    /// same form, a few hundred lines of words.
    func writeSmallCorpus(_ dir: TempDir) throws {
        let words = ["the", "model", "learns", "a", "small", "language", "of", "words", "and", "lines", "train",
                     "steer", "rate", "loss", "step", "epoch", "run", "from", "to", "with"]
        let lines = (0..<400).map { i in (0..<12).map { j in words[(i * 7 + j * j * 3 + i / 5) % words.count] }
            .joined(separator: " ") }
        try FileManager.default.createDirectory(atPath: dir.path("data"), withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir.path("data/wikitext-2.txt"), atomically: true,
                                                         encoding: .utf8)
    }

    /// About a hundred steps: paused as soon as it is attached, then each command applies at a boundary and
    /// `step N` lets a few steps through; `stop` ends it and `replay --summary` reads the whole run.
    @Test func steerLightningsDemoTransformerAPubliclyWrittenExample() throws {
        let dir = try TempDir("lrtop-attach")
        defer { dir.cleanup() }
        try writeSmallCorpus(dir)
        let run = try TorchRun(dir, script: "lightning_transformer.py", name: "wlm-e2e", stepDelay: 0,
                               extraArguments: ["--data-dir", "data"])
        defer { run.killHard() }
        #expect(run.waitForSteps(5, timeout: slow), "the demo did not start:\n\(run.output)")
        #expect(try readLog(run.log).first?["framework"] as? String == "lightning")
        let tui = try attach(dir, "runs/wlm-e2e")
        defer { tui.close() }
        try tui.waitFor("learning rate", timeout: 60)
        try tui.send("Space")
        try tui.waitFor("paused", timeout: 60)

        // While paused, commands apply at the boundary the run waits at; `step N` lets N steps through.
        try tui.command("lr 0.05")
        try tui.waitFor("✓ lr 0.05", timeout: 60)
        try tui.command("sched cosine")
        try tui.waitFor("✓ sched cosine", timeout: 60)
        try tui.command("step 3")
        let switched = try #require(eventAndNextStep(run, "sched cosine"))
        #expect((switched.event["result"] as? [String: Any])?["scheduler"] as? String != nil,
                "the schedule as built: \(switched.event)")
        let lr = (switched.step["lrs"] as? [Double])?.first ?? .nan
        #expect(abs(lr - 0.05) <= 1e-12, "the cosine starts from the LR set before it: \(lr)")

        try tui.send("c")
        try tui.waitFor("✓ ckpt", timeout: 60)
        try tui.command("step 4")
        let ckptStep = eventAndNextStep(run, "ckpt")?.event["step"] as? Int ?? -1
        #expect(run.waitForSteps(ckptStep + 4, timeout: 60))
        try tui.send("u")
        try tui.waitFor("✓ rollback", timeout: 60)
        try tui.command("step 2")
        let afterRollback = eventAndNextStep(run, "rollback")?.step["step"] as? Int
        #expect(afterRollback == ckptStep + 1, "after the rollback: \(String(describing: afterRollback)), ckpt \(ckptStep)")

        try tui.command("stop")
        try tui.waitFor("stopped", timeout: 60)
        #expect(run.waitForExit(timeout: 60), "the demo did not stop:\n\(run.output)")
        try tui.send("q")
        _ = try tui.waitFor("LRTOP_EXITED=0")

        let log = try readLog(run.log)
        #expect(log.last?["type"] as? String == "end" && log.last?["reason"] as? String == "stopped")
        let steps = records(log, type: "step")
        #expect(steps.count > 10 && steps.count < 400, "a short run: \(steps.count) steps")
        let texts = records(log, type: "event").filter { $0["kind"] as? String == "command" }
            .compactMap { $0["text"] as? String }
        for expected in ["pause", "lr 0.05", "sched cosine", "step 3", "ckpt", "step 4", "rollback", "step 2", "stop"] {
            #expect(texts.contains(expected), "no '\(expected)' command event in \(texts)")
        }
        let summary = try lrtop(["replay", "--summary", run.log])
        #expect(summary.status == 0, "\(summary.stderr)")
        #expect(summary.stdout.contains("stopped"))
    }
}
