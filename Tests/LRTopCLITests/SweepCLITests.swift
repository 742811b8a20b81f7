import Testing
import Foundation

/// `lrtop sweep` as a user runs it: headless lines and table, the files, the reproducing line, bad input, Ctrl-C,
/// and the live leaderboard in tmux.
@Suite(.serialized) struct SweepCLITests {
    /// 12 configurations × 2 seeds on the spirals, 180 steps at most: a couple of seconds.
    static let small = ["sweep", "--data", "synthetic:spirals", "--hidden", "32", "--epochs", "0", "--max-steps", "180",
                        "--lr", "1e-3..1e-1:log:3", "--warmup", "0,20", "--sched", "cosine,plateau", "--seeds", "2"]

    @Test func aHeadlessSweepHalvesLogsEveryTrialAndPrintsAReproducibleBest() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(Self.small + ["--headless", "--sweep-dir", "sw"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let lines = out.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("lrtop: sweep of 12 configurations × 2 seeds on spirals") })
        #expect(lines.contains { $0.contains("rungs end at step 20, 60, 180 (eta 3") })
        // One line per trial and rung: 24 trials at rung 1, 4 configurations × 2 seeds at rung 2, 1 × 2 at rung 3.
        let trialLines = lines.filter { $0.hasPrefix("[") && $0.contains("] rung ") }
        #expect(trialLines.count == 24 + 8 + 2)
        #expect(trialLines.first!.hasPrefix("[1/34] rung 1/3 c01-s1 adamw lr=0.001 warmup=0 cosine: step 20  val_loss "))
        #expect(lines.contains { $0.hasPrefix("rung 1/3 done at step 20: 4 of 12 configurations go on to step 60") })
        #expect(lines.contains { $0.hasPrefix("rung 2/3 done at step 60: 1 of 4 configurations go on to step 180") })
        // The table: every configuration, ranked, with mean ± spread over the seeds.
        let header = try #require(lines.firstIndex { $0.hasPrefix(" #  config") })
        let table = Array(lines[(header + 1)...(header + 12)])
        #expect(table[0].contains("3/3") && table[0].contains("done") && table[0].contains("180"))
        #expect(table[0].contains(" ±"))
        #expect(table.filter { $0.contains("stopped") }.count == 11)
        let best = try #require(lines.first { $0.hasPrefix("lrtop: best ") })
        #expect(best.contains("(mean ± std over 2 seeds)"))
        let reproduce = try #require(lines.first { $0.hasPrefix("lrtop: reproduce it with: lrtop train ") })

        // The files: sweep.json, and every trial a sub-run log that replay reads.
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.url.appendingPathComponent("sw/sweep.json"))) as! [String: Any]
        #expect(summary["budgets"] as? [Int] == [20, 60, 180])
        #expect((summary["configurations"] as? [[String: Any]])?.count == 12)
        let bestName = try #require(summary["best"] as? String)
        let bestEntry = try #require((summary["configurations"] as? [[String: Any]])?.first { $0["name"] as? String == bestName })
        #expect((bestEntry["rungs"] as? [[String: Any]])?.map { $0["step"] as? Int } == [20, 60, 180])
        #expect((bestEntry["trials"] as? [[String: Any]])?.count == 2)
        #expect(best.hasPrefix("lrtop: best \(bestName): "))
        let trials = try FileManager.default.contentsOfDirectory(atPath: dir.path("sw/trials")).sorted()
        #expect(trials.count == 24 && trials.first == "c01-s1" && trials.last == "c12-s2")
        let log = try readLog(dir.path("sw/trials/\(bestName)-s1/log.jsonl"))
        let subrun = try #require(log.first?["subrun"] as? [String: Any])
        #expect(subrun["kind"] as? String == "trial")
        #expect((subrun["label"] as? String)?.hasPrefix("\(bestName)-s1 ") == true)
        let replay = try lrtop(["replay", "--summary", dir.path("sw/trials/\(bestName)-s1/log.jsonl")])
        #expect(replay.status == 0 && replay.stdout.contains("180") && replay.stdout.contains("completed"))
        let trialEval = try #require(records(log, type: "eval").last)
        #expect(trialEval["step"] as? Int == 180)

        // The printed line parses and trains the same result for the same budget.
        var argv = shellWords(String(reproduce.dropFirst("lrtop: reproduce it with: lrtop ".count)))
        argv += ["--headless", "--run-dir", "again"]
        let again = try lrtop(argv, in: dir.url)
        #expect(again.status == 0, "\(again.stderr)")
        let againEval = try #require(records(try readLog(dir.path("again/run.jsonl")), type: "eval").last)
        #expect(againEval["step"] as? Int == 180)
        #expect(againEval["loss"] as? Double == trialEval["loss"] as? Double)
        #expect(againEval["accuracy"] as? Double == trialEval["accuracy"] as? Double)
    }

    @Test(arguments: [
        (["--lr", "1e-2..1e-4:log:5"], "invalid --lr '1e-2..1e-4:log:5': the range runs downwards; write it low to high, e.g. 1e-4..1e-2:log:5"),
        (["--lr", "abc"], "invalid --lr 'abc': 'abc' is not a number"),
        (["--sched", "cosine,cosinus"], "invalid --sched 'cosinus': unknown scheduler 'cosinus'"),
        (["--lr", "1e-4..1e-2:log:0"], "a count of 0 gives no LR to try"),
        (["--seeds", "0"], "invalid --seeds 0"),
        (["--data", "/nonexistent/fmnist"], "/nonexistent/fmnist: no such folder"),
        (["--optimizer", "adamw,adamx"], "invalid --optimizer 'adamx': unknown optimizer 'adamx'"),
        (["--warmup", "1x"], "invalid --warmup '1x'"),
    ])
    func badInputIsOneLineBeforeAnyTraining(args: [String], message: String) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var argv = ["sweep", "--headless", "--epochs", "0", "--max-steps", "50", "--sweep-dir", "sw"]
        if !args.contains("--data") { argv += ["--data", "synthetic:spirals"] }
        let out = try lrtop(argv + args, in: dir.url)
        #expect(out.status == 1)
        let errors = out.stderr.split(separator: "\n")
        #expect(errors.count == 1)
        #expect(errors.first?.hasPrefix("lrtop: error: ") == true)
        #expect(out.stderr.contains(message), "\(out.stderr)")
        #expect(out.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir.path("sw")))  // nothing trained, nothing written
    }

    @Test func anEarlierSweepIsNotOverwrittenWithoutForce() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let args = ["sweep", "--headless", "--data", "synthetic:spirals", "--hidden", "8", "--epochs", "0", "--max-steps", "30", "--sched", "step",
                    "--sweep-dir", "sw"]
        let first = try lrtop(args, in: dir.url)
        #expect(first.status == 0)
        // One seed: no spread to show, and `step` got the step size it needs.
        let best = try #require(first.stdout.split(separator: "\n").first { $0.hasPrefix("lrtop: best ") })
        #expect(best.contains("step:step_size=10") && !best.contains("±"))
        let again = try lrtop(args, in: dir.url)
        #expect(again.status == 1 && again.stderr.contains("already holds a sweep") && again.stderr.contains("--force"))
        #expect(try lrtop(args + ["--force"], in: dir.url).status == 0)
    }

    /// Issue #21 item 8: a configuration on the default schedule (its own warmup + cosine) shows the warmup its
    /// trials ran, not `0`: 60 steps of 8 batches an epoch warm up for min(one epoch, a tenth) = 6 steps.
    @Test func theTableShowsTheWarmupTheDefaultScheduleRan() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(["sweep", "--headless", "--data", "synthetic:spirals", "--hidden", "8", "--epochs", "0",
                             "--max-steps", "60", "--lr", "1e-3,1e-2", "--sweep-dir", "sw"], in: dir.url)
        let header = try readLog(dir.path("sw/trials/c01/log.jsonl")).first?["config"] as? [String: String]
        #expect(header?["scheduler"] == "warmup:steps=6 -> cosine", "what the trial ran")
        #expect(out.status == 0, "\(out.stderr)")
        // The final table's rows: " 1  c02  adamw ..." (the progress lines start with "[").
        let rows = out.stdout.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).first?.isNumber == true && $0.contains("  c0") }
        #expect(rows.count >= 2, "\(out.stdout)")
        #expect(rows.allSatisfy { $0.contains("6 (default)") }, "\(out.stdout)")
    }

    /// Trials are independent trainers: two at a time give the same results as one after another.
    @Test func twoJobsAtATimeGiveTheSameResults() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let args = ["sweep", "--headless", "--data", "synthetic:spirals", "--hidden", "16", "--epochs", "0", "--max-steps", "90",
                    "--lr", "1e-3..1e-1:log:3", "--sched", "cosine,step", "--threads", "1"]
        let one = try lrtop(args + ["--sweep-dir", "one"], in: dir.url)
        let two = try lrtop(args + ["--jobs", "2", "--sweep-dir", "two"], in: dir.url)
        #expect(one.status == 0 && two.status == 0, "\(one.stderr) \(two.stderr)")
        func results(_ name: String) throws -> [String] {
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.url.appendingPathComponent("\(name)/sweep.json"))) as! [String: Any]
            return (summary["configurations"] as! [[String: Any]]).map { c in
                "\(c["name"]!) \(c["state"]!) \(c["rung"] ?? "-") \(c["val_loss_mean"] ?? "-")"
            }
        }
        #expect(try results("one") == results("two"))
        #expect(try results("one").count == 6)
    }

    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func ctrlCKeepsFinishedTrialsAndPrintsThePartialTable() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let args = ["sweep", "--headless", "--data", "synthetic:spirals", "--hidden", "32", "--batch-size", "16",
                    "--epochs", "0", "--max-steps", "6000", "--lr", "1e-3..1e-2:log:9", "--rungs", "2", "--sweep-dir", "sw"]
        let session = try TmuxSession(command: "\(lrtopBinary.path) \(args.joined(separator: " "))", width: 160, height: 60,
                                      directory: dir.url)
        defer { session.close() }
        try session.waitFor("[2/", timeout: 120)
        try session.send("C-c")
        let screen = try session.waitFor("LRTOP_EXITED=130", timeout: 60)
        #expect(screen.contains("lrtop: sweep interrupted after"))
        #expect(screen.contains(" #  config"))
        #expect(screen.contains("interrupted"))
        // Every trial that started has a whole log: its last record is an end record.
        let trials = try FileManager.default.contentsOfDirectory(atPath: dir.path("sw/trials"))
        #expect(trials.count >= 2)
        for t in trials {
            let log = try readLog(dir.path("sw/trials/\(t)/log.jsonl"))
            #expect(log.last?["type"] as? String == "end", "\(t)")
        }
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.url.appendingPathComponent("sw/sweep.json"))) as! [String: Any]
        #expect(summary["interrupted"] as? Bool == true)
    }

    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func ctrlCInTheLeaderboardRestoresTheTerminalAndPrintsThePartialTable() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let args = ["sweep", "--data", "synthetic:spirals", "--hidden", "32", "--batch-size", "16", "--epochs", "0",
                    "--max-steps", "200000", "--lr", "1e-3..1e-2:log:9", "--rungs", "2", "--sweep-dir", "sw"]
        let session = try TmuxSession(command: "\(lrtopBinary.path) \(args.joined(separator: " "))", width: 150, height: 30,
                                      directory: dir.url)
        defer { session.close() }
        try session.waitFor("running")
        try session.send("C-c")
        let screen = try session.waitFor("LRTOP_EXITED=130", timeout: 60)
        #expect(!screen.contains("╭─ sweep"))  // the UI's screen is gone
        #expect(screen.contains("lrtop: sweep interrupted after"))
        #expect(screen.contains(" #  config") && screen.contains("interrupted"))
        let log = try readLog(dir.path("sw/trials/c01/log.jsonl"))
        #expect(log.last?["type"] as? String == "end" && log.last?["reason"] as? String == "interrupted")
    }

    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func theLiveLeaderboardRanksSortsAndEndsWithTheBest() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let args = Self.small.map { $0.contains(" ") || $0.contains(">") ? "'\($0)'" : $0 } + ["--sweep-dir", "sw"]
        let session = try TmuxSession(command: "\(lrtopBinary.path) \(args.joined(separator: " "))", width: 150, height: 30,
                                      directory: dir.url)
        defer { session.close() }
        try session.waitFor("val curve")
        var screen = try session.waitFor("done · best ", timeout: 120)
        #expect(screen.contains("sweep · "))
        #expect(screen.contains("lrtop train --data synthetic:spirals"))
        let rows = screen.split(separator: "\n").filter { $0.contains("│") && $0.contains(" c") && $0.contains("adamw") }
        #expect(rows.count == 12)
        #expect(rows.first?.contains("done") == true && rows.first?.contains("3/3") == true)
        #expect(rows.filter { $0.contains("stopped") }.count == 11)
        // s cycles the sort column: the first is rank (#), the second the configuration name.
        try session.send("s")
        try session.send("s")
        screen = try session.waitFor("config▲")
        let sorted = screen.split(separator: "\n").filter { $0.contains("│") && $0.contains("adamw") }
        #expect(sorted.first?.contains("c01") == true)
        try session.send("r")
        screen = try session.waitFor("config▼")
        #expect(screen.split(separator: "\n").first { $0.contains("│") && $0.contains("adamw") }?.contains("c12") == true)
        try session.send("q")
        screen = try session.waitFor("LRTOP_EXITED=0")
        #expect(screen.contains("lrtop: best c"))
        #expect(screen.contains(" #  config"))  // the final table, printed after the UI is gone
    }
}

/// Splits a shell line as `sh` would for words in single quotes (what `lrtop sweep` prints).
func shellWords(_ line: String) -> [String] {
    var words: [String] = [], current = "", quoted = false, inWord = false
    var chars = Array(line)[...]
    while let ch = chars.popFirst() {
        if quoted {
            if ch == "'" { quoted = false } else { current.append(ch) }
        } else if ch == "'" {
            quoted = true; inWord = true
        } else if ch == "\\", let next = chars.popFirst() {
            current.append(next); inWord = true
        } else if ch == " " {
            if inWord { words.append(current); current = ""; inWord = false }
        } else {
            current.append(ch); inWord = true
        }
    }
    if inWord { words.append(current) }
    return words
}
