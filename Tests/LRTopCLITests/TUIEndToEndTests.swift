import Testing
import Foundation

/// The real binary in a real terminal (tmux): keys in, screen and run log out.
@Suite(.serialized, .enabled(if: tmuxInstalled, "needs tmux"))
struct TUIEndToEndTests {
    /// A run that outlasts any test: the person ends it.
    let longRun = "--data synthetic:spirals --epochs 100000 --batch-size 32 --hidden 32 --run-dir run"

    func start(_ dir: TempDir, width: Int = 120, height: Int = 40, args: String? = nil) throws -> TmuxSession {
        let session = try TmuxSession(command: "\(lrtopBinary.path) \(args ?? longRun)", width: width, height: height,
                                      directory: dir.url)
        try session.waitFor("learning rate")
        return session
    }

    func events(_ dir: TempDir) throws -> [[String: Any]] {
        records(try readLog(dir.path("run/run.jsonl")), type: "event")
    }

    @Test func everyInterventionFromTheKeyboardIsAppliedAndLogged() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir)
        defer { tui.close() }
        try tui.send("Space")
        try tui.waitFor("paused")
        try tui.send(":")
        try tui.type("lr 1e-4")
        try tui.send("Enter")
        try tui.waitFor("lr 1e-4")
        try tui.send("]")
        try tui.waitFor("lr *2")
        try tui.send("[")
        try tui.send("+")
        try tui.send("n")
        try tui.send("c")
        try tui.waitFor("ckpt")
        try tui.send("u")
        try tui.waitFor("rollback")
        try tui.send("s")
        try tui.waitFor("scheduler")
        try tui.send("Enter")
        try tui.waitFor("sched cosine")
        try tui.send("r")
        try tui.send("R")
        try tui.send("w")
        try tui.send("Enter")
        try tui.waitFor("warmup")
        try tui.send("Space")
        try tui.waitFor("running")
        try tui.send("q")
        try tui.waitFor("quit? training is still running")
        try tui.send("y")
        let screen = try tui.waitFor("LRTOP_EXITED=0")
        #expect(screen.contains("lrtop: stopped at step"))
        #expect(screen.contains("replay with: lrtop replay"))

        let texts = try events(dir).filter { $0["kind"] as? String == "command" }.map { $0["text"] as! String }
        for expected in ["pause", "lr 1e-4", "lr *2", "lr /2", "step", "ckpt", "rollback", "lr release", "lr reset",
                         "warmup 200", "resume", "stop"] {
            #expect(texts.contains(expected), "no '\(expected)' event in \(texts)")
        }
        #expect(texts.contains { $0.hasPrefix("lr *1.") })
        #expect(texts.contains { $0.hasPrefix("sched cosine") })
        // Every command event carries the command as parsed (run log schema 2), beside the text.
        let commands = try events(dir).filter { $0["kind"] as? String == "command" }
        #expect(commands.allSatisfy { ($0["command"] as? [String: Any])?["verb"] is String }, "\(commands)")
        let scaled = commands.first { $0["text"] as? String == "lr /2" }?["command"] as? [String: Any]
        #expect(scaled?["change"] as? String == "scale" && scaled?["value"] as? Double == 0.5)
        let switched = commands.first { ($0["text"] as? String)?.hasPrefix("sched ") == true }
        #expect(((switched?["result"] as? [String: Any])?["scheduler"] as? String)?.hasPrefix("cosine:T_max=") == true)
        let rolled = commands.first { $0["text"] as? String == "rollback" }?["result"] as? [String: Any]
        #expect(rolled?["rolled_back_to"] is Int)
        let log = try readLog(dir.path("run/run.jsonl"))
        #expect(log.last?["type"] as? String == "end")
        #expect(log.last?["reason"] as? String == "stopped")
    }

    @Test func anInvalidCommandIsShownInlineAndChangesNothing() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir)
        defer { tui.close() }
        try tui.send(":")
        try tui.type("lr abc")
        try tui.send("Enter")
        try tui.waitFor("invalid LR 'abc'")
        try tui.send("Escape")
        try tui.send(":")
        try tui.type("sched cosin")
        try tui.send("Enter")
        // Parsed, then rejected by the trainer: an error event in the list, with what to do in the log.
        try tui.waitFor("✗ sched cosin")
        try tui.send("q")
        try tui.send("y")
        try tui.waitFor("LRTOP_EXITED=0")
        let errors = try events(dir).filter { $0["kind"] as? String == "error" }
        // Both kinds of refusal are logged: the parse error too (issue #10).
        #expect(errors.map { $0["text"] as! String } == ["lr abc", "sched cosin"])
        // The one that parsed carries its command; the one that did not has none to carry.
        #expect(errors.map { ($0["command"] as? [String: Any])?["verb"] as? String } == [nil, "sched"])
        #expect((errors.last?["message"] as? String)?.contains("unknown scheduler 'cosin'") == true)
    }

    @Test func helpOverlayListsTheKeys() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir)
        defer { tui.close() }
        try tui.send("?")
        let screen = try tui.waitFor("esc closes")
        for text in ["pause", "checkpoint", "roll back", "theme", "quit"] {
            #expect(screen.lowercased().contains(text), "help lacks '\(text)'")
        }
        try tui.send("Escape")
        try tui.send("q")
        try tui.send("y")
        try tui.waitFor("LRTOP_EXITED=0")
    }

    @Test func ctrlCRestoresTheTerminalAndEndsTheLogCleanly() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir)
        defer { tui.close() }
        try tui.send("C-c")
        let screen = try tui.waitFor("LRTOP_EXITED=130")
        #expect(!screen.contains("learning rate"))     // the UI's screen is gone
        let log = try readLog(dir.path("run/run.jsonl"))
        #expect(log.last?["reason"] as? String == "interrupted")
        #expect(FileManager.default.fileExists(atPath: dir.path("run/checkpoints/final.ckpt")))
    }

    @Test func sigtermRestoresTheTerminalAndEndsTheLogCleanly() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir)
        defer { tui.close() }
        let pid = try tui.tmux(["list-panes", "-t", tui.name, "-F", "#{pane_pid}"]).trimmingCharacters(in: .whitespacesAndNewlines)
        // The pane runs a shell; lrtop is its child.
        let kill = Process()
        kill.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
        kill.arguments = ["-TERM", "-P", pid, "lrtop"]
        try kill.run()
        kill.waitUntilExit()
        let screen = try tui.waitFor("LRTOP_EXITED=143")
        #expect(!screen.contains("learning rate"))
        let log = try readLog(dir.path("run/run.jsonl"))
        #expect(log.last?["reason"] as? String == "interrupted")
    }

    @Test func aTinyTerminalShowsTheMinimumSizeAndResizingRedraws() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir)
        defer { tui.close() }
        try tui.resize(width: 40, height: 10)
        try tui.waitFor("too small")
        try tui.resize(width: 120, height: 40)
        try tui.waitFor("learning rate")
        try tui.send("q")
        try tui.send("y")
        try tui.waitFor("LRTOP_EXITED=0")
    }

    @Test func trainingThatEndsStaysOnScreenUntilQuit() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir, args: "--data synthetic:spirals --epochs 2 --batch-size 64 --hidden 16 --pace off --run-dir run")
        defer { tui.close() }
        try tui.waitFor("finished")
        try tui.send("q")       // nothing is running: no question
        try tui.waitFor("LRTOP_EXITED=0")
        #expect(try readLog(dir.path("run/run.jsonl")).last?["reason"] as? String == "completed")
    }

    @Test func theStatusPanelShowsWhatTheProcessCosts() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir, width: 200, height: 60, args: "--data synthetic:spirals --epochs 2 --batch-size 64 --hidden 16 --threads 1 --pace off --run-dir run")
        defer { tui.close() }
        // Measured over a second of the trainer's and the UI thread's CPU time; then RSS and the BLAS threads.
        let screen = try tui.waitFor("% · ui ")
        let row = try #require(screen.split(separator: "\n").first { $0.contains("% · ui ") }, "\(screen)")
        #expect(row.contains("cost") && row.contains("train ") && row.contains("rss ") && row.contains("blas 1"), "\(row)")
        try tui.send("q")
    }

    /// q, and yes to "training is still running".
    func quitWhileTraining(_ tui: TmuxSession) throws {
        try tui.send("q")
        try tui.send("y")
        try tui.waitFor("LRTOP_EXITED=0")
    }

    /// The header's step ("step 1,234/…"), or nil.
    func headerStep(_ screen: String) -> Int? {
        guard let first = screen.split(separator: "\n").first, let r = first.range(of: "step ") else { return nil }
        return Int(first[r.upperBound...].prefix { $0.isNumber || $0 == "," }.filter(\.isNumber))
    }

    @Test func aRejectedCommandLooksRejectedWhereTheUserLooks() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir, width: 80, height: 24)
        defer { tui.close() }
        // Parsed, then rejected by the trainer: the ✗ and the trainer's whole reason on the key bar.
        try tui.send(":")
        try tui.type("lr head 1e-3")
        try tui.send("Enter")
        var screen = try tui.waitFor("✗ lr head 1e-3: no param group 'head'")
        #expect(!screen.contains("› lr head 1e-3\n"))
        try tui.send(":")
        try tui.type("sched cosine:T_max=-5")
        try tui.send("Enter")
        screen = try tui.waitFor("✗ sched cosine:T_max=-5:")
        // A command that applied is confirmed.
        try tui.send("]")
        try tui.waitFor("✓ lr *2")
        // Not even parsed: the prompt stays open with the reason; it is logged too.
        try tui.send(":")
        try tui.type("lr abc")
        try tui.send("Enter")
        try tui.waitFor("invalid LR 'abc'")
        try tui.send("Escape")
        // Space says what it will do.
        try tui.send("Space")
        try tui.waitFor("␣ resume")
        try quitWhileTraining(tui)
        let errors = try events(dir).filter { $0["kind"] as? String == "error" }.map { $0["text"] as! String }
        #expect(errors == ["lr head 1e-3", "sched cosine:T_max=-5", "lr abc"])
    }

    /// The first run lasts long enough to steer (issue #21 item 14): in the UI a run is paced to last 2.5 minutes
    /// unless told otherwise, the header says so, `<` `>` and `:pace` change it live, `pace off` is full speed.
    /// Its `--name` is what the header calls it (item 6).
    @Test func theUIsRunIsPacedAndThePaceIsSteerable() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        // 1,200 steps: the auto pace is 8/s (1,200 / 150 s), where full speed is hundreds a second.
        let tui = try start(dir, args: "--data synthetic:spirals --epochs 0 --max-steps 1200 --batch-size 32 --hidden 16 --name spiral-a --run-dir run")
        defer { tui.close() }
        var screen = try tui.waitFor("pace 8/s")
        #expect(screen.split(separator: "\n").first?.contains("spiral-a") == true, "\(screen)")
        Thread.sleep(forTimeInterval: 2)
        let early = try #require(headerStep(try tui.screen()))
        #expect(early < 60, "paced at 8/s, 2 s in: step \(early)")
        try tui.send(">")
        try tui.waitFor("pace 16/s")
        try tui.waitFor("✓ pace *2")
        try tui.send("<")
        try tui.send("<")
        try tui.waitFor("pace 4/s")
        try tui.send(":")
        try tui.type("pace off")
        try tui.send("Enter")
        screen = try tui.waitFor("finished", timeout: 60)
        #expect(!screen.split(separator: "\n")[0].contains("pace"), "\(screen)")
        try tui.send("q")
        try tui.waitFor("LRTOP_EXITED=0")
        let texts = try events(dir).filter { $0["kind"] as? String == "command" }.map { $0["text"] as! String }
        #expect(texts == ["pace *2", "pace /2", "pace /2", "pace off"], "\(texts)")
        // Headless keeps full speed: no wait between steps.
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--epochs", "0", "--max-steps", "1200", "--batch-size", "32",
                             "--hidden", "16", "--run-dir", "fast"], in: dir.url)
        #expect(out.status == 0)
        let steps = records(try readLog(dir.path("fast/run.jsonl")), type: "step")
        let seconds = (steps.last?["wall_time"] as? Double ?? 999) - (steps.first?["wall_time"] as? Double ?? 0)
        #expect(seconds < 60, "headless took \(seconds) s for 1,200 steps")
    }

    @Test func afterTheRunFinishesTheSteeringKeysSaySo() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir, args: "--data synthetic:spirals --epochs 1 --batch-size 64 --hidden 16 --pace off --run-dir run")
        defer { tui.close() }
        try tui.waitFor("finished")
        try tui.send("]")
        try tui.waitFor("the run has finished: nothing left to steer")
        try tui.send("q")
        try tui.waitFor("LRTOP_EXITED=0")
        #expect(try events(dir).filter { $0["text"] as? String == "lr *2" }.isEmpty)
    }

    @Test func rollbackWhilePausedShowsTheRestoredStepEverywhereAtOnce() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir)
        defer { tui.close() }
        try tui.send("c")
        try tui.waitFor("✓ ckpt")
        // Train on past the checkpoint, then pause.
        #expect(try tui.waitUntil(timeout: 30) { (headerStep($0) ?? 0) > 300 })
        try tui.send("Space")
        try tui.waitFor("ETA paused")
        let before = try #require(headerStep(try tui.screen()))
        try tui.send("u")
        let screen = try tui.waitFor("✓ rollback")
        // "rolled back from step N to step M (manual)": paused, no step since, and every panel shows M.
        let target = try #require(screen.range(of: "to step ").map { Int(screen[$0.upperBound...].prefix { $0.isNumber })! })
        #expect(target < before)
        #expect(try tui.waitUntil(timeout: 10) { s in
            headerStep(s) == target && s.contains(" \(Format.grouped(target)) / ")
        }, "\((try? tui.screen()) ?? "")")
        #expect(try tui.screen().contains("paused"))
        try quitWhileTraining(tui)
    }

    @Test func aSmallTerminalKeepsStateStepETAAndTheWayOut() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try start(dir, width: 60, height: 18)
        defer { tui.close() }
        #expect(try tui.waitUntil(timeout: 30) { s in
            let lines = s.split(separator: "\n", omittingEmptySubsequences: false)
            guard lines.count >= 18 else { return false }
            let header = lines[0], bar = lines[17]
            return header.contains("● running") && header.contains("step ") && header.contains("ETA")
                && bar.contains("? help") && bar.contains("q quit")
        }, "\((try? tui.screen()) ?? "")")
        try quitWhileTraining(tui)
    }

    @Test func threeOverlaidRunsAreNamedByFolderAndCountToTheLongest() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        for (name, steps) in [("short", 100), ("mid", 200), ("long", 300)] {
            let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--max-steps", "\(steps)",
                                 "--batch-size", "32", "--hidden", "16", "--run-dir", name], in: dir.url)
            #expect(out.status == 0, "\(out.stderr)")
        }
        let tmux = try TmuxSession(command: "\(lrtopBinary.path) replay short/run.jsonl mid/run.jsonl long/run.jsonl",
                                   width: 120, height: 40, directory: dir.url)
        defer { tmux.close() }
        try tmux.waitFor("━ short ━ mid ━ long", timeout: 20)
        let screen = try tmux.waitFor("step 300/300", timeout: 20)
        #expect(!screen.contains("300%") && !screen.contains("200%"))
        #expect(screen.contains("100%"))
        try tmux.send("q")
        try tmux.waitFor("LRTOP_EXITED=0", timeout: 10)
        let summary = try lrtop(["replay", "--summary", "short/run.jsonl", "mid/run.jsonl", "long/run.jsonl"], in: dir.url)
        #expect(summaryRows(summary.stdout).dropFirst().map { $0[0] } == ["short", "mid", "long"])
    }
}

/// Thousands separators as the UI writes them.
enum Format {
    static func grouped(_ n: Int) -> String {
        let digits = String(n)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return out
    }
}
