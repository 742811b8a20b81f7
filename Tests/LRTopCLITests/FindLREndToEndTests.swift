import Testing
import Foundation

/// `find-lr` as a user meets it: the `f` key in a live run (tmux), `lrtop find-lr` in the UI and headless, and
/// its refusals.
@Suite(.serialized)
struct FindLREndToEndTests {
    let longRun = "--data synthetic:spirals --epochs 100000 --batch-size 32 --hidden 32 --run-dir run"

    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func fSweepsShowsTheCurvePicksAnLRAndTheRunContinues() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try TmuxSession(command: "\(lrtopBinary.path) \(longRun)", width: 120, height: 40, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("learning rate")
        try tui.send("f")
        // The curve and every suggestion, named in the legend, the cursor on valley.
        var screen = try tui.waitFor("cursor lr")
        #expect(screen.contains("find-lr · subruns/find-lr-"))
        for name in ["valley", "steep", "min/10", "slide", "lightning"] { #expect(screen.contains(name), "no \(name) in\n\(screen)") }
        #expect(screen.contains("enter: lr"))
        func cursorLR(_ screen: String) -> String? {
            screen.split(separator: "\n").first { $0.contains("cursor lr ") }
                .map { String($0.split(separator: "cursor lr ")[1].split(separator: " ")[0]) }
        }
        let valley = try #require(cursorLR(screen))
        // Two points down the curve from valley (a safer LR for the run that goes on).
        try tui.send("Left")
        try tui.send("Left")
        #expect(try tui.waitUntil(timeout: 10) { cursorLR($0) != valley && cursorLR($0) != nil })
        try tui.send("Left")
        try tui.send("Right")
        Thread.sleep(forTimeInterval: 0.5)
        let pick = try #require(cursorLR(try tui.screen()))
        try tui.send("Enter")
        screen = try tui.waitFor("✓ lr \(pick)")
        // The status shows the picked LR, and the run trains on.
        #expect(screen.contains("running"))
        let log = dir.path("run/run.jsonl")
        let pickedAt = try #require(records(try readLog(log), type: "event").first { $0["text"] as? String == "lr \(pick)" })
        let step = pickedAt["step"] as! Int
        #expect(try tui.waitUntil(timeout: 30) { _ in
            (try? records(readLog(log), type: "step").contains { ($0["step"] as! Int) > step + 50 }) ?? false
        })
        try tui.send("q")
        try tui.send("y")
        try tui.waitFor("LRTOP_EXITED=0")

        let events = records(try readLog(log), type: "event").filter { $0["kind"] as? String == "command" }
        let texts = events.map { $0["text"] as! String }
        let i = try #require(texts.firstIndex(of: "find-lr"))
        #expect(Array(texts[(i - 1)...(i + 2)]) == ["pause", "find-lr", "lr \(pick)", "resume"])
        let message = events[i]["message"] as! String
        #expect(message.hasPrefix("subruns/find-lr-") && message.contains("valley"))
        let folder = String(message.prefix { $0 != ":" })
        let sub = try readLog(dir.path("run/\(folder)/log.jsonl"))
        #expect((sub.first?["subrun"] as? [String: Any])?["kind"] as? String == "find-lr")
        // The steps after the pick used it.
        let after = records(try readLog(log), type: "step").first { ($0["step"] as! Int) == step + 1 }
        #expect(abs(((after?["lrs"] as? [Double])?.first ?? 0) / Double(pick)! - 1) < 1e-9)
    }

    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func findLRInTheUIOpensThePanelAndEnterTrainsWithThePick() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let args = "find-lr --data synthetic:spirals --epochs 1 --batch-size 32 --hidden 32 --run-dir run"
        let tui = try TmuxSession(command: "\(lrtopBinary.path) \(args)", width: 120, height: 40, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("cursor lr")
        // The run waits, paused, while the panel is open. The header's state is read a moment before the sweep's
        // file in a frame, so under load the first frame with the curve can still say running: the next says paused.
        #expect(try tui.waitUntil(timeout: 10) { $0.contains("cursor lr") && $0.contains("paused") })
        try tui.send("Enter")
        try tui.waitFor("✓ lr")
        try tui.waitFor("finished", timeout: 120)
        try tui.send("q")
        try tui.waitFor("LRTOP_EXITED=0")
        let texts = records(try readLog(dir.path("run/run.jsonl")), type: "event")
            .filter { $0["kind"] as? String == "command" }.map { $0["text"] as! String }
        #expect(Array(texts.prefix(2)) == ["pause", "find-lr"])
        #expect(texts.dropFirst(2).first?.hasPrefix("lr ") == true && texts.contains("resume"), "\(texts)")
        // Trained with the pick exactly as 'lrtop train --lr PICK' trains: the same LR at every step, warmup
        // included (an override at step 0 would have been multiplied by the warmup).
        let pick = String(texts[2].dropFirst(3))
        let plain = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--epochs", "1", "--batch-size", "32",
                               "--hidden", "32", "--lr", pick, "--run-dir", "plain"], in: dir.url)
        #expect(plain.status == 0)
        func lrs(_ path: String) throws -> [Double] {
            records(try readLog(path), type: "step").map { ($0["lrs"] as! [Double])[0] }
        }
        let picked = try lrs(dir.path("run/run.jsonl")), reference = try lrs(dir.path("plain/run.jsonl"))
        #expect(!picked.isEmpty && picked == reference)
    }

    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func aScriptedFindLRReplaysAsItsCurve() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "@40 find-lr steps=60\n".write(toFile: dir.path("s.txt"), atomically: true, encoding: .utf8)
        let train = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--hidden", "32", "--batch-size", "32",
                               "--max-steps", "100", "--commands", "s.txt", "--run-dir", "run"], in: dir.url)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("step 40: find-lr steps=60") && train.stdout.contains("subruns/find-lr-40: "))
        let tui = try TmuxSession(command: "\(lrtopBinary.path) replay run", width: 120, height: 40, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("replay")
        try tui.send("G")
        try tui.send("f")
        let screen = try tui.waitFor("find-lr · subruns/find-lr-40")
        #expect(screen.contains("valley") && screen.contains("a replay"))
        // The replay is of the run alone: the sweep is not overlaid as a second run.
        #expect(!screen.contains("find-lr-40/log"))
        try tui.send("Escape")
        try tui.send("q")
        try tui.waitFor("LRTOP_EXITED=0")
    }

    @Test func headlessPrintsTheSuggestionsAndATrainLine() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(["find-lr", "--headless", "--data", "synthetic:spirals", "--hidden", "32", "--batch-size", "32",
                             "--optimizer", "sgd", "--run-dir", "fl"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        for name in ["valley", "steep", "min/10", "slide", "lightning"] { #expect(out.stdout.contains("  " + name)) }
        #expect(out.stdout.contains("← pick"))
        let train = try #require(out.stdout.split(separator: "\n").last)
        #expect(train.hasPrefix("lrtop train --data synthetic:spirals --hidden 32 --batch-size 32 --optimizer sgd --lr "))
        #expect(!train.contains("--run-dir") && !train.contains("--headless"))
        // The printed LR is the valley's, and the sweep is a sub-run the replay finds.
        let valleyRow = try #require(out.stdout.split(separator: "\n").first { $0.hasPrefix("  valley") })
        #expect(train.hasSuffix(" " + valleyRow.split(separator: " ")[1]))
        let sub = try readLog(dir.path("fl/subruns/find-lr-0/log.jsonl"))
        #expect(sub.count > 10)
        let main = try readLog(dir.path("fl/run.jsonl"))
        #expect(main.last?["type"] as? String == "end")
        #expect((main.last?["message"] as? String)?.contains("find-lr only") == true)
        #expect(!FileManager.default.fileExists(atPath: dir.path("fl/checkpoints/final.ckpt")))
        // --pick chooses the line's LR.
        let steep = try lrtop(["find-lr", "--headless", "--data", "synthetic:spirals", "--hidden", "32", "--pick", "steep",
                               "--run-dir", "fl2"], in: dir.url)
        let steepRow = try #require(steep.stdout.split(separator: "\n").first { $0.hasPrefix("  steep") })
        #expect(steepRow.contains("← pick"))
        // From trained weights (fine-tuning): the sweep starts from them and the train line keeps --init.
        let trained = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--hidden", "32", "--max-steps", "50",
                                 "--run-dir", "t"], in: dir.url)
        #expect(trained.status == 0)
        let tuned = try lrtop(["find-lr", "--headless", "--data", "synthetic:spirals", "--hidden", "32", "--init",
                               "t/checkpoints/final.ckpt", "--run-dir", "fl3"], in: dir.url)
        #expect(tuned.status == 0, "\(tuned.stderr)")
        #expect(tuned.stdout.split(separator: "\n").last?.hasPrefix("lrtop train --data synthetic:spirals --hidden 32 --init t/checkpoints/final.ckpt --lr ") == true,
                "\(tuned.stdout)")
    }

    @Test(arguments: [
        (["--start", "1", "--end", "1e-3"], "needs start < end"),
        (["--steps", "3"], "invalid --steps '3'"),
        (["--start", "abc"], "--start"),
        (["--pick", "best"], "unknown --pick 'best'"),
        (["--data", "/nonexistent/data"], "/nonexistent/data"),
        (["--init", "/nonexistent/w.safetensors"], "/nonexistent/w.safetensors"),
    ])
    func badInputGetsAOneLineErrorAndANonZeroExit(_ c: (args: [String], message: String)) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(["find-lr", "--headless"] + c.args, in: dir.url, timeout: 60)
        #expect(out.status != 0)
        // The first line says what is wrong (the usage lines after it are ArgumentParser's, as for every command).
        #expect(out.stderr.split(separator: "\n").first?.contains(c.message) == true, "\(out.stderr)")
    }
}
