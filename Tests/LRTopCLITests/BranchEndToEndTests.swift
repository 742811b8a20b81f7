import Testing
import Foundation

/// "What if" branches as a user makes them: `b` in the live UI forks, the table fills, `b` again adopts the best
/// branch; a `--commands` script forks and adopts headless; replay draws the branches over their run.
@Suite(.serialized)
struct BranchEndToEndTests {
    func events(_ path: String) throws -> [[String: Any]] { records(try readLog(path), type: "event") }

    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func forkFromTheKeyboardThenAdoptTheBestBranch() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try TmuxSession(command: "\(lrtopBinary.path) --data synthetic:spirals --epochs 100000 --batch-size 32 "
                                  + "--hidden 32 --run-dir run", width: 130, height: 42, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("learning rate")
        try tui.send("Space")
        try tui.waitFor("paused")
        try tui.send("b")
        try tui.waitFor(":fork lr=")
        try tui.send("Enter")
        // The run waits at the fork point; the table shows the three branches as they train, then their results.
        let training = try tui.waitFor("branches from step")
        // The status panel says why the run does not step.
        #expect(training.contains("paused · branches"))
        let done = try tui.waitFor("3/3 done", timeout: 180)
        #expect(done.contains("b1@"), "no branch overlay in the legend")
        #expect(done.components(separatedBy: "  done").count - 1 == 3, "three finished rows in the table")
        try tui.send("b")
        let prompt = try tui.waitFor(":adopt ")
        let adopted = try #require(prompt.split(separator: "\n").first { $0.hasPrefix(":adopt ") })
            .dropFirst(":adopt ".count).prefix { $0.isNumber }
        try tui.send("Enter")
        try tui.waitFor("adopted ✓")
        try tui.send("q")
        try tui.waitFor("quit?")
        try tui.send("y")
        try tui.waitFor("LRTOP_EXITED=0")

        let log = try events(dir.path("run/run.jsonl"))
        let fork = try #require(log.first { ($0["text"] as? String)?.hasPrefix("fork lr=") == true })
        #expect(fork["kind"] as? String == "command")
        let at = try #require(fork["step"] as? Int)
        #expect((fork["message"] as? String)?.contains("subruns/fork-\(at)-3") == true)
        let adopt = try #require(log.first { $0["text"] as? String == "adopt \(adopted)" })
        #expect(adopt["kind"] as? String == "command" && adopt["step"] as? Int == at + 500)
        for k in 1...3 {
            let branch = try readLog(dir.path("run/subruns/fork-\(at)-\(k)/log.jsonl"))
            #expect((branch.first?["subrun"] as? [String: Any])?["kind"] as? String == "branch")
            #expect(branch.last?["type"] as? String == "end" && branch.last?["reason"] as? String == "completed")
        }
        // The adopted branch's steps are the run's own from the fork point on.
        let steps = records(try readLog(dir.path("run/run.jsonl")), type: "step").compactMap { $0["step"] as? Int }
        #expect(steps.contains(at + 1) && steps.contains(at + 500))
    }

    @Test func aScriptForksAndAdoptsAndReplayDrawsTheBranches() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "@40 fork lr=0.3,0.03 steps=20\n@60 adopt 2\n".write(toFile: dir.path("s.txt"), atomically: true, encoding: .utf8)
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--max-steps", "100", "--hidden", "32",
                             "--commands", "s.txt", "--run-dir", "run"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let log = try readLog(dir.path("run/run.jsonl"))
        #expect(records(log, type: "step").compactMap { $0["step"] as? Int } == Array(1...100))
        let texts = records(log, type: "event").filter { $0["kind"] as? String == "command" }.map { $0["text"] as! String }
        #expect(texts.contains("fork lr=0.3,0.03 steps=20") && texts.contains("adopt 2"))
        // The adopted branch's first step ran at its LR.
        let step41 = try #require(records(log, type: "step").first { $0["step"] as? Int == 41 })
        #expect(step41["lrs"] as? [Double] == [0.03])

        let summary = try lrtop(["replay", "--summary", "run"], in: dir.url)
        #expect(summary.status == 0, "\(summary.stderr)")
        #expect(summary.stdout.contains("b1@40 lr 0.3") && summary.stdout.contains("b2@40 lr 0.03"), "\(summary.stdout)")

        guard tmuxInstalled else { return }
        let tui = try TmuxSession(command: "\(lrtopBinary.path) replay run/run.jsonl", width: 130, height: 42,
                                  directory: dir.url)
        defer { tui.close() }
        let screen = try tui.waitFor("branches from step 40")
        #expect(screen.contains("adopted ✓"))
        #expect(screen.contains("b1@40 lr 0.3"))
        try tui.send("q")
        try tui.waitFor("LRTOP_EXITED=0")
    }
}
