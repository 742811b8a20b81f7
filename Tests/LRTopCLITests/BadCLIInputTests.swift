import Testing
import Foundation

/// The bad command lines of issue #11's suite: each is one clear line naming the problem, a non-zero exit, never
/// a trap (134, 132, 139 are the signals a trap or crash shows as), and nothing written.
@Suite(.serialized) struct BadCLIInputTests {
    static let spirals = ["train", "--headless", "--data", "synthetic:spirals", "--hidden", "16", "--batch-size", "64"]

    func refused(_ args: [String], saying message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(args, in: dir.url, timeout: 60)
        #expect(out.status != 0 && out.status < 128, "exit \(out.status) for \(args)", sourceLocation: sourceLocation)
        #expect(out.stderr.contains(message), "stderr for \(args): \(out.stderr)", sourceLocation: sourceLocation)
        #expect(!out.stderr.contains("Missing value"), "\(out.stderr)", sourceLocation: sourceLocation)
        #expect(!out.stderr.contains("NSCocoaErrorDomain"), "\(out.stderr)", sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: dir.path("runs")), "a run folder was made for \(args)",
                sourceLocation: sourceLocation)
    }

    @Test(arguments: [
        (["--lr", "-1"], "invalid --lr -1"),
        (["--epochs", "-1"], "invalid --epochs -1"),
        (["--max-steps", "-5"], "invalid --max-steps -5"),
        (["--seed", "-1"], "a seed is a whole number from 0 to"),
        (["--dropout", "-0.5"], "invalid --dropout -0.5"),
        (["--guard-factor", "-2"], "invalid --guard-factor -2"),
        (["--scheduler", "-> cosine"], "empty part in scheduler sequence"),
        (["--checkpoint-every", "-10"], "invalid --checkpoint-every -10"),
    ])
    func negativeValuesSayWhatIsWrongWithThem(args: [String], message: String) throws {
        try refused(Self.spirals + args, saying: message)
    }

    @Test func aMistypedCommandSuggestsTheRightOne() throws {
        try refused(["trian"], saying: "did you mean 'train'?")
        try refused(["replya", "x.jsonl"], saying: "did you mean 'replay'?")
        try refused(["frobnicate"], saying: "unknown command 'frobnicate'")
    }

    @Test(arguments: [
        (["--hidden", "100000000"], "would need about"),
        (["--hidden", "9223372036854775807"], "more memory than can be counted"),
        (["--epochs", "9223372036854775807"], "more steps than can be counted"),
        (["--batch-size", "9223372036854775807"], "is larger than the training split"),
    ])
    func sizesTooLargeAreRefusedBeforeAllocating(args: [String], message: String) throws {
        try refused(Self.spirals + args, saying: message)
    }

    @Test(.enabled(if: fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func aConvnetBatchTooLargeForTheMachineIsRefusedWithTheFigure() throws {
        try refused(["train", "--headless", "--model", "convnet", "--batch-size", "60000"], saying: "would need about")
    }

    @Test(arguments: [
        ("@10 sched cosin", "s.txt:1: unknown scheduler 'cosin'"),
        ("@1 sched step:step_size=0", "s.txt:1: step: step_size must be a positive integer"),
        ("@10 lr nosuchgroup 1e-3", "s.txt:1: no param group 'nosuchgroup': groups are default"),
        ("# fine\n@5 lr *0.5\n@99999 lr 1e-3", "s.txt:3: '@99999 lr 1e-3' is after the run's last step"),
        ("@3 sched onecycle:pct_start=2", "s.txt:1: onecycle"),
    ])
    func aCommandsScriptIsCheckedInFullBeforeTraining(script: String, message: String) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try script.write(toFile: dir.path("s.txt"), atomically: true, encoding: .utf8)
        let out = try lrtop(Self.spirals + ["--max-steps", "100", "--commands", "s.txt"], in: dir.url)
        #expect(out.status == 1)
        #expect(out.stderr.contains(message), "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("runs")))
    }

    @Test func configAndCommandsFilesThatAreNotTextSayWhatTheyAre() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try Data("lr = 0.1\u{FF}".utf8 + [0xFF, 0xFE]).write(to: dir.url.appendingPathComponent("latin1.conf"))
        try refused(Self.spirals + ["--config", "/dev/null"], saying: "the config file /dev/null is a character device")
        try refused(Self.spirals + ["--config", dir.path("latin1.conf")], saying: "is not UTF-8 text")
        try refused(Self.spirals + ["--commands", "/dev/null"], saying: "the commands script /dev/null is a character device")
        try refused(Self.spirals + ["--commands", dir.path("latin1.conf")], saying: "is not UTF-8 text")
        try refused(Self.spirals + ["--commands", "/tmp"], saying: "is a folder")
        try refused(Self.spirals + ["--config", "/nonexistent.conf"], saying: "/nonexistent.conf: No such file or directory")
    }

    @Test func runFolderAndLogPathsThatCannotBeUsedAreOneLine() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "x".write(toFile: dir.path("afile"), atomically: true, encoding: .utf8)
        #expect(mkfifo(dir.path("fifo"), 0o644) == 0)
        try refused(Self.spirals + ["--run-dir", dir.path("afile")], saying: "afile is a file, not a folder")
        try refused(Self.spirals + ["--run-dir", "/proc/x/y"], saying: "cannot create the run folder /proc/x/y: No such file or directory")
        try refused(Self.spirals + ["--log", dir.path("fifo")], saying: "is a FIFO (named pipe), not a regular file")
        try refused(Self.spirals + ["--log", "/dev/full"], saying: "/dev/full is a character device")
        if geteuid() != 0 {
            try FileManager.default.createDirectory(atPath: dir.path("locked"), withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o500])
            try refused(Self.spirals + ["--run-dir", dir.path("locked/run")], saying: "Permission denied")
        }
    }

    @Test func resumeAppliesWhatMayChangeAndRefusesWhatMayNot() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let first = try lrtop(Self.spirals + ["--max-steps", "60", "--checkpoint-every", "30", "--run-dir", "a"], in: dir.url)
        #expect(first.status == 0, "\(first.stderr)")
        let ckpt = "a/checkpoints/step-00000030.ckpt"

        // A different optimizer cannot apply to a resumed run: refused, naming both, before anything is written.
        let refused = try lrtop(["train", "--headless", "--resume", ckpt, "--optimizer", "sgd", "--lr", "5"], in: dir.url)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("--optimizer sgd (the checkpoint has adamw)"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("runs")))

        // The step limit and the LR apply; what is printed is what runs.
        let out = try lrtop(["train", "--headless", "--resume", ckpt, "--lr", "0.02", "--max-steps", "90",
                             "--guard-factor", "0", "--run-dir", "b"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("resuming mlp at step 30 of 90"), "\(out.stdout)")
        #expect(out.stdout.contains("adamw lr=0.001") && out.stdout.contains("LR overridden to 0.02 from step 30"))
        let log = try readLog(dir.path("b/run.jsonl"))
        let steps = records(log, type: "step")
        #expect(steps.first?["step"] as? Int == 31 && steps.last?["step"] as? Int == 90)
        let override = records(log, type: "event").first { $0["kind"] as? String == "command" }
        #expect(override?["text"] as? String == "lr 0.02")
        #expect((steps.first?["lrs"] as? [Double])?.first == 0.02)
        // The header is the checkpoint's config with the new limit.
        let config = log[0]["config"] as? [String: String]
        #expect(config?["optimizer"] == "adamw" && config?["max_steps"] == "90")

        // A limit before the checkpoint's step cannot continue it.
        let early = try lrtop(["train", "--headless", "--resume", ckpt, "--max-steps", "20", "--run-dir", "c"], in: dir.url)
        #expect(early.status == 1 && early.stderr.contains("the checkpoint is at step 30"), "\(early.stderr)")
    }

    @Test func headlessAndTheUIShareTheDefaultSchedule() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(Self.spirals + ["--epochs", "2", "--run-dir", "r"], in: dir.url)
        #expect(out.status == 0)
        let config = try readLog(dir.path("r/run.jsonl"))[0]["config"] as? [String: String]
        // Warmup over a tenth of the run (186 steps), then cosine: what the README and the UI say.
        #expect(config?["scheduler"] == "warmup:steps=18 -> cosine", "\(config?["scheduler"] ?? "")")
        #expect(out.stdout.contains("scheduler warmup:steps=18 -> cosine"))
    }

    @Test func headlessProgressColumnsDoNotShiftAtEpochTen() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--hidden", "8", "--batch-size", "1000",
                             "--epochs", "12", "--run-dir", "r"], in: dir.url)
        #expect(out.status == 0)
        let epochLines = out.stdout.split(separator: "\n").filter { $0.hasPrefix("epoch ") }
        #expect(epochLines.count == 12)
        let columns = Set(epochLines.map { $0.distance(from: $0.startIndex, to: $0.firstIndex(of: "/")!) })
        #expect(columns.count == 1, "\(epochLines.joined(separator: "\n"))")
        let progress = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--hidden", "8", "--batch-size", "1000",
                                  "--epochs", "12", "--progress-every", "5", "--run-dir", "p"], in: dir.url)
        let stepLines = progress.stdout.split(separator: "\n").filter { $0.hasPrefix("step ") && $0.contains(" epoch ") }
        #expect(Set(stepLines.map { $0.distance(from: $0.startIndex, to: $0.range(of: "loss")!.lowerBound) }).count == 1,
                "\(stepLines.joined(separator: "\n"))")
    }

    @Test func aGroupRuleMatchingNothingWarnsNamingTheParameters() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(Self.spirals + ["--max-steps", "3", "--group", "nomatch.*:lr=0", "--run-dir", "r"], in: dir.url)
        #expect(out.status == 0)
        #expect(out.stderr.contains("warning: --group 'nomatch.*:lr=0' matches no parameter (parameters: fc1.weight"), "\(out.stderr)")
    }

    @Test func exportToAPathInsideAFileIsOneLine() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        #expect(try lrtop(Self.spirals + ["--max-steps", "3", "--run-dir", "r"], in: dir.url).status == 0)
        try "x".write(toFile: dir.path("afile"), atomically: true, encoding: .utf8)
        let out = try lrtop(["export", dir.path("r/run.jsonl"), "--to", "tensorboard", dir.path("afile/tb")])
        #expect(out.status != 0)
        #expect(!out.stderr.contains("NSCocoaErrorDomain") && out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
    }
}
