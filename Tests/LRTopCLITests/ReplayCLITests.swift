import Foundation
import Testing

/// The shared fixtures (TensorBoard and Lightning files with a manifest): `../shared/fixtures` beside the package,
/// or `$LRTOP_FIXTURES_DIR`.
let fixturesDir: URL = {
    if let env = ProcessInfo.processInfo.environment["LRTOP_FIXTURES_DIR"], !env.isEmpty { return URL(fileURLWithPath: env) }
    return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
}()
let fixturesPresent = FileManager.default.fileExists(atPath: fixturesDir.appendingPathComponent("manifest.json").path)

/// Trains a small run with two interventions (`@100 lr *0.5`, `@200 sched cosine`) into DIR/run.jsonl and returns
/// the final loss line the trainer printed.
@discardableResult
func trainSteeredRun(in dir: TempDir, steps: Int = 300) throws -> String {
    try "@100 lr *0.5\n@200 sched cosine\n".write(toFile: dir.path("cmds.txt"), atomically: true, encoding: .utf8)
    let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--max-steps", "\(steps)", "--batch-size", "32",
                         "--hidden", "32", "--commands", "cmds.txt", "--log", "run.jsonl", "--run-dir", "r"], in: dir.url)
    #expect(out.status == 0, "\(out.stderr)")
    let line = out.stdout.split(separator: "\n").first { $0.contains("final train loss") } ?? ""
    return String(line)
}

/// The `--summary` table as rows of cells (split on runs of two or more spaces).
func summaryRows(_ stdout: String) -> [[String]] {
    stdout.split(separator: "\n").map { line in
        line.replacingOccurrences(of: "  +", with: "\t", options: .regularExpression).split(separator: "\t").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
    }
}

/// The lines lrtop wrote to stderr.
func stderrLines(_ out: Output) -> [String] {
    out.stderr.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
}

@Suite(.serialized) struct ReplayCLITests {
    @Test func aRunNamedWithNameIsCalledSoInTheSummary() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        for (folder, name) in [("a", ["--name", "sgd-hi"]), ("b", [])] {
            let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--max-steps", "20", "--batch-size", "32",
                                 "--hidden", "8", "--run-dir", folder] + name, in: dir.url)
            #expect(out.status == 0, "\(out.stderr)")
        }
        let out = try lrtop(["replay", "--summary", "a/run.jsonl", "b/run.jsonl"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(summaryRows(out.stdout).dropFirst().map { $0.first ?? "" } == ["sgd-hi", "b"], "\(out.stdout)")
    }

    /// Issue #21 item 6: a run is called what people call it: its folder (not `run`), its --name even when it forked
    /// (its branches carry its config), and `watch` calls it so too (not `run.jsonl`).
    @Test func aRunIsCalledByItsFolderOrItsNameEvenWhenItForked() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "@30 fork lr=0.01,0.001 steps=10\n@40 adopt 2\n".write(toFile: dir.path("fork.txt"), atomically: true, encoding: .utf8)
        for (folder, extra) in [("plain-a", [String]()), ("forked", ["--name", "sgd-hi", "--commands", "fork.txt"])] {
            let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--max-steps", "60", "--batch-size", "32",
                                 "--hidden", "8", "--run-dir", folder] + extra, in: dir.url)
            #expect(out.status == 0, "\(out.stderr)")
        }
        var out = try lrtop(["replay", "--summary", "plain-a/run.jsonl"], in: dir.url)
        #expect(summaryRows(out.stdout).dropFirst().first?.first == "plain-a", "\(out.stdout)")
        out = try lrtop(["replay", "--summary", "plain-a"], in: dir.url)
        #expect(summaryRows(out.stdout).dropFirst().first?.first == "plain-a", "\(out.stdout)")
        out = try lrtop(["replay", "--summary", "forked/run.jsonl"], in: dir.url)
        let names = summaryRows(out.stdout).dropFirst().compactMap(\.first)
        #expect(names.first == "sgd-hi", "\(out.stdout)")
        #expect(names.count == 3, "the run and its two branches: \(out.stdout)")
    }

    @Test func summaryOfATrainedRunCountsItsInterventions() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let trained = try trainSteeredRun(in: dir)
        let out = try lrtop(["replay", "--summary", "run.jsonl"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.isEmpty, "\(out.stderr)")
        let rows = summaryRows(out.stdout)
        #expect(rows.first == ["run", "format", "last step", "final loss", "best batch loss", "final acc", "best acc",
                               "interventions", "ended"])
        let row = try #require(rows.count == 2 ? rows[1] : nil, "\(out.stdout)")
        #expect(row[0] == dir.url.lastPathComponent && row[1] == "lrtop run log" && row[2] == "300", "named by its folder")
        #expect(row[7] == "2", "lr *0.5 and sched cosine")
        #expect(row[8] == "completed")
        // The final loss is the one the trainer printed.
        #expect(trained.contains("final train loss \(row[3])"), "\(trained) vs \(row)")
        #expect(Double(row[4])! <= Double(row[3])!)
        #expect(row[5].hasSuffix("%") && row[6].hasSuffix("%"))
    }

    @Test(.enabled(if: fixturesPresent, "needs ../shared/fixtures (or LRTOP_FIXTURES_DIR)"))
    func summaryOfTheFixtures() throws {
        let out = try lrtop(["replay", "--summary", fixturesDir.appendingPathComponent("tensorboard").path,
                             fixturesDir.appendingPathComponent("lightning_csv/run/version_0/metrics.csv").path])
        #expect(out.status == 0, "\(out.stderr)")
        let rows = summaryRows(out.stdout).dropFirst()
        func row(_ name: String) -> [String]? { rows.first { $0.first == name } }
        // The manifest's last training loss: 0.3956187 at step 999 in each TensorBoard file.
        for name in ["tbx", "torch_simple", "torch_tensor"] {
            let r = try #require(row(name), "no row \(name) in\n\(out.stdout)")
            #expect(r[1] == "TensorBoard" && r[2] == "999" && r[3] == "0.3956", "\(r)")
        }
        // val/acc (10 values) is guessed as the accuracy of the torch files.
        #expect(row("torch_simple")?[5].hasSuffix("%") == true)
        let csv = try #require(rows.first { $0.count > 1 && $0[1] == "CSV" }, "\(out.stdout)")
        #expect(csv[0] == "metrics.csv" && csv[5].hasSuffix("%"), "\(csv)")
    }

    /// Each kind of bad input: one line naming the file and what is wrong; what can be read is shown; no crash.
    @Test func badInputIsOneLineEachAndNothingCrashes() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try trainSteeredRun(in: dir)
        let good = try String(contentsOfFile: dir.path("run.jsonl"), encoding: .utf8)
        let lines = good.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func write(_ name: String, _ text: String) throws { try text.write(toFile: dir.path(name), atomically: true, encoding: .utf8) }
        try write("empty.jsonl", "")
        try write("truncated.jsonl", String(good.dropLast(40)))
        try write("garbage.jsonl", (lines[..<50] + ["{\"type\": garbage ]]"] + lines[50...]).joined(separator: "\n"))
        try write("nan.jsonl", lines.enumerated().map { i, l in
            i == 20 ? l.replacingOccurrences(of: #""loss":[^,]*"#, with: #""loss":"NaN""#, options: .regularExpression) : l
        }.joined(separator: "\n"))
        try write("notes.txt", "shopping list\neggs, milk\n")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }).write(to: dir.url.appendingPathComponent("blob.bin"))
        // A TensorBoard file with one byte flipped in a record's data.
        let ex = try lrtop(["export", "run.jsonl", "--to", "tensorboard", "tb"], in: dir.url)
        #expect(ex.status == 0, "\(ex.stderr)")
        let tbName = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path("tb")).first { $0.hasPrefix("events") })
        var tb = try Data(contentsOf: URL(fileURLWithPath: dir.path("tb/" + tbName)))
        tb[tb.count / 2] ^= 0xFF
        try tb.write(to: URL(fileURLWithPath: dir.path("tb/" + tbName)))

        let cases: [(file: String, readable: Bool, message: String)] = [
            ("empty.jsonl", false, "empty.jsonl: empty file"),
            ("truncated.jsonl", true, "truncated.jsonl:308: truncated last line"),
            ("garbage.jsonl", true, "garbage.jsonl:51: not JSON"),
            ("nan.jsonl", true, "nan.jsonl: step 20: loss is NaN"),
            ("notes.txt", false, "notes.txt: unrecognised format"),
            ("blob.bin", false, "blob.bin: unrecognised format"),
            ("tb", true, "checksum mismatch, record skipped"),
        ]
        for c in cases {
            let out = try lrtop(["replay", "--summary", c.file], in: dir.url)
            let err = stderrLines(out)
            #expect(err.count == 1, "\(c.file): \(err)")
            #expect(err.first?.contains(c.message) == true, "\(c.file): \(err)")
            #expect(err.first?.hasPrefix(c.readable ? "lrtop: warning: " : "lrtop: error: ") == true, "\(c.file): \(err)")
            #expect(out.status == (c.readable ? 0 : 1), "\(c.file): status \(out.status)")
            if c.readable {
                // What could be read is shown: every step but the broken ones.
                let rows = summaryRows(out.stdout)
                #expect(rows.count == 2 && (Int(rows[1][2]) ?? 0) >= 299, "\(c.file): \(out.stdout)")
            }
        }
        // Bad files among good ones: the good ones are shown, each problem is one line.
        let mixed = try lrtop(["replay", "--summary", "run.jsonl", "empty.jsonl", "garbage.jsonl", "notes.txt"], in: dir.url)
        #expect(mixed.status == 0)
        #expect(stderrLines(mixed).count == 3, "\(mixed.stderr)")
        #expect(summaryRows(mixed.stdout).count == 3)
    }

    /// lrtop → TensorBoard → lrtop, and lrtop → CSV → lrtop, give the same scalars.
    @Test func exportRoundTripsThroughTheCLI() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try trainSteeredRun(in: dir)
        #expect(try lrtop(["export", "run.jsonl", "--to", "tensorboard", "tb"], in: dir.url).status == 0)
        #expect(try lrtop(["export", "run.jsonl", "--to", "csv", "run.csv"], in: dir.url).status == 0)
        let original = summaryRows(try lrtop(["replay", "--summary", "run.jsonl"], in: dir.url).stdout)[1]
        for exported in ["tb", "run.csv"] {
            let out = try lrtop(["replay", "--summary", exported], in: dir.url)
            #expect(out.status == 0, "\(out.stderr)")
            #expect(out.stderr.isEmpty, "\(out.stderr)")
            let row = summaryRows(out.stdout)[1]
            // Last step, final and best loss, final and best accuracy.
            #expect(Array(row[2...6]) == Array(original[2...6]), "\(exported): \(row) vs \(original)")
        }
    }

    @Test func theUIOnAPipeSaysToUseSummary() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try trainSteeredRun(in: dir)
        let out = try lrtop(["replay", "run.jsonl"], in: dir.url)
        #expect(out.status != 0)
        #expect(stderrLines(out).count == 1)
        #expect(out.stderr.contains("--summary"), "\(out.stderr)")
        let watch = try lrtop(["watch", "run.jsonl"], in: dir.url)
        #expect(watch.status != 0 && watch.stderr.contains("terminal"))
        let speed = try lrtop(["replay", "--speed", "5000", "run.jsonl"], in: dir.url)
        #expect(speed.status != 0 && speed.stderr.contains("--speed"))
    }

    /// `lrtop bench --replay` on a small run: every figure the README quotes is there.
    @Test func benchReplayPrintsItsFigures() throws {
        let out = try lrtop(["bench", "--replay", "--replay-steps", "20000", "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Double])
        #expect(obj["steps"] == 20000)
        for key in ["jsonl_open_first_frame_s", "jsonl_open_peak_rss_mb", "tb_load_s", "jsonl_seek_max_ms", "tb_open_first_frame_s",
                    "jsonl_frame_ms", "load_average_1m"] {
            #expect(obj[key].map { $0 >= 0 } == true, "no \(key) in \(out.stdout)")
        }
        let text = try lrtop(["bench", "--replay", "--replay-steps", "5000"])
        #expect(text.status == 0 && text.stdout.contains("open + first frame") && text.stdout.contains("seek + frame"))
    }

    /// The replay UI in a real terminal: charts, the interventions in the event list, keys seek, q quits.
    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func replayInATerminal() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try trainSteeredRun(in: dir)
        let tmux = try TmuxSession(command: "\(lrtopBinary.path) replay run.jsonl", width: 120, height: 40, directory: dir.url)
        defer { tmux.close() }
        // Each check waits for the text: tmux may show a frame half written.
        for s in ["learning rate", "loss", "▶ replay · finished", "step 300/300", "100 › lr *0.5", "200 › sched cosine", "▾"] {
            try tmux.waitFor(s, timeout: 20)
        }
        // Charts drawn: braille dots.
        #expect(try tmux.waitUntil(timeout: 10) { $0.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) } })
        try tmux.send("Home")
        try tmux.waitFor("step 0/300", timeout: 10)
        // Events after the cursor are not listed yet.
        #expect(try tmux.waitUntil(timeout: 10) { !$0.contains("lr *0.5") })
        try tmux.send(".")
        try tmux.waitFor("step 100/300", timeout: 10)
        try tmux.waitFor("100 › lr *0.5", timeout: 10)
        try tmux.send("Right")
        try tmux.waitFor("step 103/300", timeout: 10)
        try tmux.send("End")
        try tmux.waitFor("step 300/300", timeout: 10)
        try tmux.send("q")
        try tmux.waitFor("LRTOP_EXITED=0", timeout: 10)
    }

    /// A run rolled back at step 150 to its checkpoint at 100 replays to its last step (issue #21 item 1): the
    /// header and the charts reach 300, not the rollback's step, and the abandoned stretch is a ghost.
    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func replayOfARolledBackRunShowsItWhole() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "@100 ckpt\n@150 rollback\n".write(toFile: dir.path("rb.txt"), atomically: true, encoding: .utf8)
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--max-steps", "300", "--batch-size", "32",
                             "--hidden", "16", "--commands", "rb.txt", "--run-dir", "rb"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let tmux = try TmuxSession(command: "\(lrtopBinary.path) replay rb", width: 120, height: 40, directory: dir.url)
        defer { tmux.close() }
        let screen = try tmux.waitFor("step 300/300", timeout: 20)
        #expect(screen.contains("cursor 300"), "\(screen)")
        // The x axes run to 300 (ticks at 250 and 300), not to the rollback's step.
        #expect(screen.split(separator: "\n").contains { $0.contains("└0") && $0.contains("250") }, "\(screen)")
        try tmux.send("g")
        try tmux.send("Home")
        try tmux.waitFor("step 0/300", timeout: 10)
        try tmux.send("G")
        try tmux.waitFor("step 300/300", timeout: 10)
        try tmux.send("q")
        try tmux.waitFor("LRTOP_EXITED=0", timeout: 10)
    }

    /// `lrtop watch` waits for a log that does not exist yet, follows it, and shows how the run ended.
    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func watchFollowsALogBeingWritten() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tmux = try TmuxSession(command: "\(lrtopBinary.path) watch run.jsonl", width: 120, height: 40, directory: dir.url)
        defer { tmux.close() }
        try tmux.waitFor("waiting for run.jsonl to appear", timeout: 20)
        try trainSteeredRun(in: dir)
        let screen = try tmux.waitFor("◉ watching · finished", timeout: 20)
        // Named by its folder, as replay names it, not by its file name.
        #expect(!screen.split(separator: "\n")[0].contains("run.jsonl"), "\(screen)")
        // The frame that first says "finished" may predate the last records' redraw on a busy machine: wait for them.
        try tmux.waitFor("step 300/300", timeout: 10)
        try tmux.waitFor("200 › sched cosine", timeout: 10)
        try tmux.send("q")
        try tmux.waitFor("LRTOP_EXITED=0", timeout: 10)
    }
}
