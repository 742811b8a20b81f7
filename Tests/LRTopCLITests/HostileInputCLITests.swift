import Foundation
import Testing

/// Issue #20 through the CLI as typed: text from files is printed without its escape sequences (item 4), sweep
/// sizes are refused up front with their time and disk (12), the rollback guard gives up after a few rollbacks
/// in a row (13), a sweep on a full disk fails and says so (16), `--checkpoint-keep` prunes the disk (18), and
/// file-system errors say what happened (19).
@Suite(.serialized) struct HostileInputCLITests {
    static let spirals = ["--data", "synthetic:spirals", "--hidden", "8", "--batch-size", "64"]

    // MARK: item 4

    @Test func namesFromALogAndAThemeFileArePrintedWithoutEscapeSequences() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let evil = "ok\u{1B}]0;pwned\u{07}\u{1B}[2J\u{1B}[31mred\u{9B}1m"
        let train = try lrtop(["train", "--headless"] + Self.spirals + ["--max-steps", "5", "--run-dir", "r", "--name", evil], in: dir.url)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(!holdsTerminalControls(train.stdout + train.stderr))
        let summary = try lrtop(["replay", "--summary", "r/run.jsonl"], in: dir.url)
        #expect(summary.status == 0)
        #expect(summary.stdout.contains("okred"), "\(summary.stdout)")
        #expect(!holdsTerminalControls(summary.stdout + summary.stderr), "\(summary.stdout.debugDescription)")

        // A theme file's name and its problems, listed by `lrtop themes`.
        try FileManager.default.createDirectory(atPath: dir.path("themes"), withIntermediateDirectories: true)
        try "theme[main_bg]=\"#zz\u{1B}[5m\"\n".write(toFile: dir.path("themes/x\u{1B}[31my.theme"), atomically: true, encoding: .utf8)
        let themes = try lrtop(["themes"], in: dir.url, environment: ["LRTOP_THEMES": dir.path("themes")])
        #expect(themes.status == 0)
        #expect(themes.stdout.contains("xy"), "\(themes.stdout)")
        #expect(!holdsTerminalControls(themes.stdout + themes.stderr), "\(themes.stdout.debugDescription)")

        // An error line quoting a line of a file.
        try "@1 lr \u{1B}]0;x\u{07}oops\n".write(toFile: dir.path("cmds.txt"), atomically: true, encoding: .utf8)
        let bad = try lrtop(["train", "--headless"] + Self.spirals + ["--max-steps", "5", "--commands", "cmds.txt", "--run-dir", "q"], in: dir.url)
        #expect(bad.status == 1 && bad.stderr.hasPrefix("lrtop: error: cmds.txt:1:"), "\(bad.stderr)")
        #expect(!holdsTerminalControls(bad.stderr), "\(bad.stderr.debugDescription)")
    }

    // MARK: item 12

    @Test(arguments: [
        (["--lr", "1e-3..1e-2:log:9223372036854775807"], "9.2e+18 trials"),
        (["--lr", "1e-3..1e-2:log:1000000"], "1,000,000 trials"),
        (["--seeds", "1000000"], "1,000,000 trials"),
    ])
    func sweepSizesOverTheLimitAreRefusedWithTheirTimeAndDisk(_ args: [String], _ size: String) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtopMeasured(["sweep", "--headless"] + Self.spirals + ["--epochs", "3"] + args + ["--sweep-dir", "sw"], in: dir.url)
        #expect(out.status == 1 && out.signal == 0)
        let line = out.stderr.trimmingCharacters(in: .newlines)
        #expect(line.hasPrefix("lrtop: error: a sweep of \(size) ("), "\(out.stderr)")
        #expect(line.contains("of training and ") && line.contains("of disk) is over the limit of 10,000 trials"), "\(line)")
        #expect(!line.contains("\n"))
        #expect(!FileManager.default.fileExists(atPath: dir.path("sw")))
        #expect(out.maxRSSKiB < ReaderFuzzTests.rssLimitKiB)
    }

    @Test func tooManyRungsAreRefusedSayingHowManyFit() throws {
        let out = try lrtop(["sweep", "--headless"] + Self.spirals + ["--epochs", "3", "--rungs", "100"])
        #expect(out.status == 1)
        #expect(out.stderr == "lrtop: error: invalid --rungs 100: with --eta 3 each rung is 3 times longer than the one before, "
                + "so the first of 100 rungs of a 279-step run would train less than one step; at most 6 fit\n")
    }

    // MARK: item 16

    @Test func aSweepOnAFullDiskFailsAndNamesTheDisk() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        // A 40 KiB file-size limit (what `ulimit -f` gives, like a full disk): the first rung's logs fit, the longer
        // second rung's does not.
        let command = ([lrtopBinary.path, "sweep", "--headless"] + Self.spirals + ["--epochs", "3", "--lr", "1e-3,3e-3,1e-2", "--sweep-dir", "sw"])
            .map { "'\($0)'" }.joined(separator: " ")
        let status = try runCleanly(["/bin/bash", "-c", "cd '\(dir.url.path)' && ulimit -f 40 && \(command) >out.txt 2>err.txt; echo $?"])
        #expect(status.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "exit \(status)")
        let err = try String(contentsOfFile: dir.path("err.txt"), encoding: .utf8)
        #expect(err.hasPrefix("lrtop: error: the sweep stopped early: a trial ran out of disk space ("), "\(err)")
        #expect(err.contains("File too large") && err.contains("choose another --sweep-dir"))
        let out = try String(contentsOfFile: dir.path("out.txt"), encoding: .utf8)
        let failed = out.split(separator: "\n").filter { $0.hasPrefix("lrtop: c") && $0.contains(" failed: ") }
        #expect(!failed.isEmpty, "\(out)")
        // No configuration with a failed trial is called the best, and --force is not blamed.
        for line in failed {
            let name = line.split(separator: " ")[1]
            #expect(!out.contains("lrtop: best \(name)") && !out.contains("lrtop: best so far \(name)"), "\(out)")
        }
        #expect(!(out + err).contains("--force"))
    }

    // MARK: item 13

    @Test func theRollbackGuardGivesUpAfterThreeRollbacksInARow() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        // SGD at lr 50 diverges whatever the LR after it: every rollback finds the same bad weights.
        let out = try lrtop(["train", "--headless"] + Self.spirals + ["--max-steps", "200", "--optimizer", "sgd", "--lr", "50", "--scheduler", "constant",
                            "--checkpoint-every", "1", "--on-divergence", "rollback", "--run-dir", "g"], in: dir.url, timeout: 60)
        #expect(out.status == 2, "\(out.stderr)")
        let guardLines = out.stdout.split(separator: "\n").filter { $0.contains("divergence guard:") }
        #expect(guardLines.count == 4, "\(out.stdout)")
        #expect(guardLines[0].hasSuffix("and halved the LR"))
        #expect(guardLines[2].hasSuffix("and halved the LR again (3 rollbacks in a row)"))
        #expect(guardLines[3].contains("3 rollbacks in a row (the LR halved each time, now ")
                && guardLines[3].hasSuffix("run stopped (headless: nobody to resume it)"), "\(guardLines[3])")
        let log = try readLog(dir.path("g/run.jsonl"))
        let halved = records(log, type: "event").filter { $0["kind"] as? String == "guard" }.compactMap { ($0["lrs_after"] as? [Double])?.first }
        #expect(halved.prefix(3) == [25, 12.5, 6.25], "\(halved)")
        #expect(log.last?["reason"] as? String == "diverged")
    }

    // MARK: item 18

    @Test func checkpointKeepPrunesTheFilesOnDisk() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(["train", "--headless"] + Self.spirals + ["--max-steps", "30", "--checkpoint-every", "5",
                            "--checkpoint-keep", "2", "--run-dir", "k"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path("k/checkpoints")).sorted()
        // The ring keeps 2 in memory: the automatic ones beyond are deleted, the final one stays.
        #expect(files == ["final.ckpt", "step-00000030.ckpt"], "\(files)")
    }

    // MARK: item 19

    @Test func aPathThroughAFileSaysSoInsteadOfAnErrorNumber() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "x".write(toFile: dir.path("afile"), atomically: true, encoding: .utf8)
        let train = try lrtop(["train", "--headless"] + Self.spirals + ["--max-steps", "3", "--run-dir", "afile/run"], in: dir.url)
        #expect(train.stderr == "lrtop: error: cannot create the run folder \(dir.path("afile/run")): \(dir.path("afile")) is a file, "
                + "not a folder; choose another --run-dir\n")
        let sweep = try lrtop(["sweep", "--headless"] + Self.spirals + ["--max-steps", "30", "--sweep-dir", "afile/sw"], in: dir.url)
        #expect(sweep.stderr.contains("is a file, not a folder") && !sweep.stderr.contains("error 512"), "\(sweep.stderr)")
        let tb = try lrtop(["export", "afile", "--to", "tensorboard", "afile/tb"], in: dir.url)
        #expect(tb.status == 1 && !tb.stderr.contains("error 512"))
    }
}
