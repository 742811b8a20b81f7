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
        #expect(errors.map { $0["text"] as! String } == ["sched cosin"])
        #expect((errors.first?["message"] as? String)?.contains("unknown scheduler 'cosin'") == true)
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
        let tui = try start(dir, args: "--data synthetic:spirals --epochs 2 --batch-size 64 --hidden 16 --run-dir run")
        defer { tui.close() }
        try tui.waitFor("finished")
        try tui.send("q")       // nothing is running: no question
        try tui.waitFor("LRTOP_EXITED=0")
        #expect(try readLog(dir.path("run/run.jsonl")).last?["reason"] as? String == "completed")
    }
}
